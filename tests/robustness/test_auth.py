"""Auth matrix: no key, an unknown key and another user's key against every operation, raw and through the SDK.

Denied answers are 401 (no or unknown key) or 404 (another user's run; 403 when naming another user's entity),
they come fast, the SDK raises at once without retrying (the server counts requests), and no answer or error ever
mentions the other user's run names, ids, counts, email or log text.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mcli
from mcli.local import LocalServer
from mcli.local.server import add_user

from .conftest import KEY, report

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from server.helpers import (
    CREATE,
    DELETE,
    LOGS,
    RUNS,
    STOP,
    UPDATE,
    UPDATE_METADATA,
    WATCH,
    Api,
    WsClient,
    post_raw,
)

SECRET_RUN = "alice-secret-run"
LIVE_RUN = "alice-live-run"
SECRET_LOG = "ALICE-SECRET-LOG-LINE"
ALICE_EMAIL = "local@mcli.local"
UNKNOWN_KEY = "not-a-key-of-anyone-000000000000"
FAST = 3.0  # seconds a denial may take, at most


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("auth")
    with LocalServer(data_dir=data_dir, api_key=KEY, stop_grace_seconds=1.0) as server:
        api = Api(server.endpoint, KEY)

        async def setup() -> list[dict[str, Any]]:
            done = await api.create(runName=SECRET_RUN, command=f"echo {SECRET_LOG}")
            live = await api.create(runName=LIVE_RUN, command=f"echo {SECRET_LOG}; sleep 60")
            await api.wait(SECRET_RUN)
            await api.wait(LIVE_RUN, {"RUNNING"})
            return [done, live]

        runs = asyncio.run(setup())
        bob = add_user(data_dir, "bob@example.com")
        secrets = [SECRET_RUN, LIVE_RUN, SECRET_LOG, ALICE_EMAIL, *(r["id"] for r in runs)]
        yield {"server": server, "bob": bob, "secrets": secrets}


def _no_leak(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"leaked {secret!r} in {text[:500]}"


SELECT = {"getRunsData": {"filters": {"name": {"in": [SECRET_RUN, LIVE_RUN]}}}}
SELECT_ONE = {"getRunsData": {"filters": {"name": {"in": [LIVE_RUN]}}}}
HTTP_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "getRunsPaginated": (RUNS, {"getRunsPaginatedData": {"filters": {"name": {"in": [SECRET_RUN]}}}}),
    "getRunsPaginated-all": (RUNS, {"getRunsPaginatedData": {}}),
    "getRunsPaginated-entity": (RUNS, {"getRunsPaginatedData": {"entity": {"emails": [ALICE_EMAIL]}}}),
    "createRun": (CREATE, {"createRunData": {"runInput": {"image": "x/y:1", "command": "true", "runName": SECRET_RUN}}}),
    "stopRuns": (STOP, SELECT),
    "deleteRuns": (DELETE, SELECT),
    "updateRun": (UPDATE, {**SELECT_ONE, "updateRunData": {"priority": "high"}}),
    "updateRunMetadata": (UPDATE_METADATA, {**SELECT_ONE, "updateRunMetadataData": {"metadata": {"a": 1}}}),
}
CREDENTIALS = ["none", "unknown", "bearer-unknown", "other-user"]


def _key(world: dict[str, Any], credential: str) -> str | None:
    return {"none": None, "unknown": UNKNOWN_KEY, "bearer-unknown": f"Bearer {UNKNOWN_KEY}",
            "other-user": world["bob"]}[credential]


MATRIX: dict[str, int] = {"http": 0, "ws": 0, "sdk": 0}


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("op", list(HTTP_OPS))
def test_http_auth_matrix(world: dict[str, Any], op: str, credential: str) -> None:
    server: LocalServer = world["server"]
    query, variables = HTTP_OPS[op]
    before = server.stats.http_requests
    started = time.monotonic()
    status, body = asyncio.run(post_raw(server.endpoint, _key(world, credential), {"query": query, "variables": variables}))
    elapsed = time.monotonic() - started
    MATRIX["http"] += 1
    assert elapsed < FAST, elapsed
    assert server.stats.http_requests - before == 1
    codes = [e["extensions"]["code"] for e in body.get("errors") or []]
    if credential != "other-user":
        assert status == 401 and codes and set(codes) == {401}, body
    elif op == "getRunsPaginated-entity":
        assert status == 403 and set(codes) == {403}, body
    elif op.startswith("getRunsPaginated"):
        # Another user sees an empty list: no names, and no count of someone else's runs.
        assert status == 200 and body["data"]["getRunsPaginated"] == {"cursor": None, "hasNextPage": False, "runs": []}
    elif op == "createRun":
        # Run names are per user: the same name is free for bob (a 409 would reveal alice's run).
        assert status == 200 and body["data"]["createRun"][0]["createdByEmail"] == "bob@example.com", body
        asyncio.run(Api(server.endpoint, world["bob"]).delete([SECRET_RUN]))
    else:
        assert status == 404 and set(codes) == {404}, body
    text = json.dumps(body)
    secrets = world["secrets"]
    if op == "createRun" and credential == "other-user":
        secrets = [s for s in secrets if s != SECRET_RUN]  # bob's own run may carry the name he chose
    elif op not in ("getRunsPaginated-all", "getRunsPaginated-entity"):
        # Names the caller sent may be echoed back ("No runs found named ..."); ids, email and logs may not.
        secrets = [s for s in secrets if s not in (SECRET_RUN, LIVE_RUN)]
        assert "No runs found" in text or status != 404
    _no_leak(text, secrets)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize("credential", [*CREDENTIALS, "header-unknown"])
@pytest.mark.parametrize("op", ["getRunLogsV2", "watchRunStatus"])
def test_ws_auth_matrix(world: dict[str, Any], op: str, credential: str, protocol: str) -> None:
    server: LocalServer = world["server"]
    query, variables = (
        (LOGS, {"getRunLogsInput": {"name": LIVE_RUN, "follow": True}})
        if op == "getRunLogsV2"
        else (WATCH, {"watchRunStatusInput": {"name": LIVE_RUN}})
    )

    async def attempt() -> list[dict[str, Any]]:
        client = WsClient(server.endpoint, protocol)
        headers = {"Authorization": UNKNOWN_KEY} if credential == "header-unknown" else None
        key = None if credential == "header-unknown" else _key(world, credential)
        await client.connect(key, headers=headers)
        try:
            await client.start(query, variables)
            messages = []
            while True:
                message = await asyncio.wait_for(client.recv(), FAST)
                messages.append(message)
                if message["type"] in ("error", "complete"):
                    return messages
        finally:
            await client.close()

    started = time.monotonic()
    messages = asyncio.run(attempt())
    MATRIX["ws"] += 1
    assert time.monotonic() - started < FAST
    # The operation ends with an error and no data at all.
    assert [m["type"] for m in messages] == ["error"], messages
    payload = messages[0]["payload"]
    errors = payload if isinstance(payload, list) else [payload]
    expected = 404 if credential == "other-user" else 401
    assert [e["extensions"]["code"] for e in errors] == [expected], errors
    text = json.dumps(messages)
    _no_leak(text, [s for s in world["secrets"] if s not in (SECRET_RUN, LIVE_RUN)])


def _sdk_calls() -> dict[str, Callable[[], Any]]:
    return {
        "get_runs": lambda: mcli.get_runs(),
        "get_run": lambda: mcli.get_run(SECRET_RUN),
        "create_run": lambda: mcli.create_run({"name": "sdk-auth-probe", "image": "x/y:1", "command": "true"}),
        "stop_runs": lambda: mcli.stop_runs([LIVE_RUN]),
        "stop_run": lambda: mcli.stop_run(LIVE_RUN),
        "delete_runs": lambda: mcli.delete_runs([SECRET_RUN]),
        "delete_run": lambda: mcli.delete_run(SECRET_RUN),
        "update_run_metadata": lambda: mcli.update_run_metadata(LIVE_RUN, {"a": 1}),
        "get_run_logs": lambda: mcli.get_run_logs(SECRET_RUN),
        "follow_run_logs": lambda: list(mcli.follow_run_logs(SECRET_RUN)),  # type: ignore[arg-type]
        "watch_run_status": lambda: list(mcli.watch_run_status(LIVE_RUN)),
        "wait_for_run_status": lambda: mcli.wait_for_run_status(LIVE_RUN, "COMPLETED", timeout=10),
    }


@pytest.mark.parametrize("credential", ["none", "unknown", "other-user"])
@pytest.mark.parametrize("call", list(_sdk_calls()))
def test_sdk_auth_matrix(
    world: dict[str, Any], sdk_env: Callable[[str, str | None], None], call: str, credential: str
) -> None:
    server: LocalServer = world["server"]
    sdk_env(server.endpoint, _key(world, credential))
    before = server.stats.total
    started = time.monotonic()
    outcome: Any
    try:
        outcome = _sdk_calls()[call]()
    except mcli.MCLIException as exc:
        outcome = exc
    elapsed = time.monotonic() - started
    sent = server.stats.total - before
    MATRIX["sdk"] += 1
    assert elapsed < FAST, f"{call} took {elapsed:.1f}s"
    if credential == "none":
        assert isinstance(outcome, mcli.MCLIConfigError), outcome
        assert sent == 0
        return
    # One request (HTTP), or one websocket (connect + init + subscribe): never a retry storm.
    assert sent <= 4, f"{call} sent {sent} requests"
    if credential == "unknown":
        assert isinstance(outcome, mcli.AuthenticationError), outcome
    elif call == "get_runs":
        assert outcome == []
    elif call == "create_run":
        assert isinstance(outcome, mcli.Run) and outcome.name == "sdk-auth-probe"
        mcli.delete_run("sdk-auth-probe")
    else:
        assert isinstance(outcome, mcli.NotFoundError), outcome
    if isinstance(outcome, Exception):
        _no_leak(f"{outcome} {getattr(outcome, 'errors', '')}",
                 [s for s in world["secrets"] if s not in (SECRET_RUN, LIVE_RUN)])


def test_alice_untouched(world: dict[str, Any]) -> None:
    """After every denied attempt, alice's runs are as they were (nothing stopped, deleted or changed)."""
    server: LocalServer = world["server"]
    api = Api(server.endpoint, KEY)
    secret = asyncio.run(api.get(SECRET_RUN))
    live = asyncio.run(api.get(LIVE_RUN))
    assert secret["status"] == "COMPLETED" and not secret["isDeleted"]
    assert live["status"] == "RUNNING" and live["priority"] == "auto" and live["details"]["metadata"] == {}
    report(
        f"auth matrix: {MATRIX['http']} HTTP + {MATRIX['ws']} websocket + {MATRIX['sdk']} SDK cases "
        f"(credentials: none, unknown, Bearer unknown, header-only unknown, other user's key)"
    )
    asyncio.run(api.stop([LIVE_RUN]))
