"""Raw clients for the local server: aiohttp for HTTP, `websockets` for both subscription subprotocols."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import websockets

RUN_FIELDS = """
  id name status createdAt updatedAt reason createdByEmail priority maxRetries preemptible
  retryOnSystemFailure maxDurationSeconds isDeleted runType startedAt completedAt
  resumptions { executionIndex clusterName cpus gpuType gpus nodes startTime endTime status
                estimatedEndTime reason }
"""
DETAILS = """
  details { image originalRunInput metadata lastExecutionId
            lifecycle { executionIndex status startTime endTime reason }
            nodes { rank name status reason }
            formattedRunEvents { resumptionIndex eventType eventTime eventMessage } }
"""
CREATE = f"""mutation CreateRun($createRunData: CreateRunInput!) {{
  createRun(createRunData: $createRunData) {{ {RUN_FIELDS} {DETAILS} }} }}"""
RUNS = f"""query GetRunsPaginated($getRunsPaginatedData: GetRunsPaginatedInput!) {{
  getRunsPaginated(getRunsPaginatedData: $getRunsPaginatedData) {{
    cursor hasNextPage runs {{ {RUN_FIELDS} {DETAILS} }} }} }}"""
RUNS_LIGHT = f"""query GetRunsPaginated($getRunsPaginatedData: GetRunsPaginatedInput!) {{
  getRunsPaginated(getRunsPaginatedData: $getRunsPaginatedData) {{ cursor hasNextPage runs {{ {RUN_FIELDS} }} }} }}"""
STOP = f"""mutation StopRuns($getRunsData: GetRunsInput!, $stopRunsData: StopRunsInput) {{
  stopRuns(getRunsData: $getRunsData, stopRunsData: $stopRunsData) {{ {RUN_FIELDS} }} }}"""
DELETE = f"""mutation DeleteRuns($getRunsData: GetRunsInput!) {{
  deleteRuns(getRunsData: $getRunsData) {{ {RUN_FIELDS} }} }}"""
UPDATE = f"""mutation UpdateRun($getRunsData: GetRunsInput!, $updateRunData: UpdateRunInput!) {{
  updateRun(getRunsData: $getRunsData, updateRunData: $updateRunData) {{ {RUN_FIELDS} }} }}"""
UPDATE_METADATA = f"""mutation UpdateRunMetadata($getRunsData: GetRunsInput!,
    $updateRunMetadataData: UpdateRunMetadataInput!) {{
  updateRunMetadata(getRunsData: $getRunsData, updateRunMetadataData: $updateRunMetadataData) {{
    {RUN_FIELDS} details {{ metadata }} }} }}"""
LOGS = """subscription Subscription($getRunLogsInput: GetRunLogsInput!) {
  getRunLogsV2(getRunLogsInput: $getRunLogsInput) { chunk endOffset } }"""
WATCH = """subscription Subscription($watchRunStatusInput: WatchRunStatusInput!) {
  watchRunStatus(watchRunStatusInput: $watchRunStatusInput) }"""

TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


class GqlError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors

    @property
    def code(self) -> int:
        return int(self.errors[0]["extensions"]["code"])


async def post(endpoint: str, key: str | None, query: str, variables: dict[str, Any] | None = None) -> Any:
    """POST one operation; return `data` or raise GqlError."""
    status, body = await post_raw(endpoint, key, {"query": query, "variables": variables or {}})
    if body.get("errors"):
        raise GqlError(status, body["errors"])
    return body["data"]


async def post_raw(endpoint: str, key: str | None, payload: Any, raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = key
    async with aiohttp.ClientSession() as session:
        data = raw if raw is not None else json.dumps(payload).encode()
        async with session.post(endpoint, data=data, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


class Api:
    """Typed-ish helpers over `post` for one user."""

    def __init__(self, endpoint: str, key: str) -> None:
        self.endpoint = endpoint
        self.key = key

    async def create(self, **run_input: Any) -> dict[str, Any]:
        run_input.setdefault("image", "local/test:latest")
        data = await post(self.endpoint, self.key, CREATE, {"createRunData": {"runInput": run_input}})
        assert len(data["createRun"]) == 1
        run: dict[str, Any] = data["createRun"][0]
        return run

    async def page(self, **inp: Any) -> dict[str, Any]:
        inp.setdefault("filters", {})
        data = await post(self.endpoint, self.key, RUNS_LIGHT, {"getRunsPaginatedData": inp})
        page: dict[str, Any] = data["getRunsPaginated"]
        return page

    async def get(self, name: str, include_deleted: bool = False) -> dict[str, Any]:
        inp = {"filters": {"name": {"in": [name]}}, "includeDeleted": include_deleted, "limit": None}
        data = await post(self.endpoint, self.key, RUNS, {"getRunsPaginatedData": inp})
        runs = data["getRunsPaginated"]["runs"]
        assert len(runs) == 1, runs
        run: dict[str, Any] = runs[0]
        return run

    async def wait(self, name: str, statuses: set[str] = TERMINAL, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = await self.get(name)
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still {run['status']}")
            await asyncio.sleep(0.05)

    async def stop(self, names: list[str], reason: str | None = None) -> list[dict[str, Any]]:
        variables: dict[str, Any] = {"getRunsData": {"filters": {"name": {"in": names}}}}
        if reason is not None:
            variables["stopRunsData"] = {"reason": reason}
        runs: list[dict[str, Any]] = (await post(self.endpoint, self.key, STOP, variables))["stopRuns"]
        return runs

    async def delete(self, names: list[str]) -> list[dict[str, Any]]:
        variables = {"getRunsData": {"filters": {"name": {"in": names}}}}
        runs: list[dict[str, Any]] = (await post(self.endpoint, self.key, DELETE, variables))["deleteRuns"]
        return runs


class WsClient:
    """A raw subscriptions client speaking either protocol."""

    def __init__(self, endpoint: str, protocol: str = "graphql-transport-ws") -> None:
        self.url = endpoint.replace("http://", "ws://")
        self.protocol = protocol
        self.ws: Any = None
        self.next_id = 0

    async def connect(
        self, key: str | None, offer: list[str] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.ws = await websockets.connect(
            self.url, subprotocols=offer or [self.protocol], additional_headers=headers, max_size=2**20
        )
        assert self.ws.subprotocol == self.protocol, self.ws.subprotocol
        payload = {"Authorization": key} if key is not None else {}
        await self.ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = await self.recv()
        assert ack["type"] == "connection_ack", ack

    async def recv(self) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if message["type"] in ("ka", "ping"):
                if message["type"] == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def start(self, query: str, variables: dict[str, Any]) -> str:
        self.next_id += 1
        op_id = str(self.next_id)
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.ws.send(
            json.dumps({"type": kind, "id": op_id, "payload": {"query": query, "variables": variables}})
        )
        return op_id

    async def stream(self, query: str, variables: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield each `data` payload until `complete`; raise GqlError on an error message or payload."""
        op_id = await self.start(query, variables)
        while True:
            message = await self.recv()
            assert message.get("id") == op_id, message
            if message["type"] == "complete":
                return
            if message["type"] == "error":
                payload = message["payload"]
                raise GqlError(400, payload if isinstance(payload, list) else [payload])
            payload = message["payload"]
            if payload.get("errors"):
                raise GqlError(400, payload["errors"])
            yield payload["data"]

    async def collect(self, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
        return [item async for item in self.stream(query, variables)]

    async def logs(self, **inp: Any) -> tuple[bytes, list[int]]:
        """Whole log bytes of one getRunLogsV2 stream, and every endOffset seen."""
        import base64

        out = b""
        offsets = []
        async for data in self.stream(LOGS, {"getRunLogsInput": inp}):
            out += base64.b64decode(data["getRunLogsV2"]["chunk"])
            offsets.append(data["getRunLogsV2"]["endOffset"])
        return out, offsets

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


RESTART_KEY = "restart-key-0123456789"  # the key of the servers ServerProcess starts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = f"http://127.0.0.1:{self.port}/graphql"

    def start(self) -> list[str]:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcli.local",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--api-key",
                RESTART_KEY,
                "--stop-grace-seconds",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("Press Ctrl-C"):
                return lines
        raise AssertionError(f"server did not start: {lines}")

    def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code
