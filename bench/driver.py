"""One measurement in a fresh interpreter: `python driver.py '<job json>'` prints one JSON line of results.

The same file runs under our venv (`client: "ours"`) and under the official client's venv (`client: "official"`,
mosaicml-cli 0.8.3); both packages are imported as `mcli`, so the job says which one it got. The endpoint and the
key come from MOSAICML_API_ENDPOINT / MOSAICML_API_KEY. Only the standard library is imported at module level.
Jobs `ceiling_server`, `ceiling_client` and `server_query` need `websockets` / `aiohttp` (our venv has both).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from typing import Any

# A run that prints one line with its own wall clock every `interval` seconds, after a pause that lets the client
# attach first (so every measured line is live, not backlog).
LIVE_COMMAND = (
    "python3 -u -c 'import time\ntime.sleep({pause})\nfor _ in range({count}):\n"
    "    print(time.time_ns(), flush=True)\n    time.sleep({interval})'"
)
# A run that prints `lines` lines of 72 bytes each, as fast as it can.
BULK_COMMAND = (
    "python3 -c 'import sys\nw = sys.stdout.write\nfor i in range({lines}):\n"
    '    w("line %07d " % i + "x" * 59 + "\\n")\''
)


def _deadline(job: dict[str, Any]) -> float:
    return time.monotonic() + float(job.get("max_seconds", 120))


def _config(mcli: Any, name: str, command: str) -> Any:
    return mcli.RunConfig(name=name, image="bench", command=command)


def _terminal(mcli: Any, run: Any, timeout: float) -> Any:
    return mcli.wait_for_run_status(run, "COMPLETED", timeout=timeout)


# -- client jobs ----------------------------------------------------------------------------------------------


def create_seq(mcli: Any, job: dict[str, Any]) -> dict[str, Any]:
    prefix = job["prefix"]
    mcli.create_run(_config(mcli, f"{prefix}-warm", "true"), timeout=60)  # connection set-up is not measured
    latencies = []
    deadline = _deadline(job)
    for i in range(int(job["n"])):
        config = _config(mcli, f"{prefix}-{i}", "true")
        started = time.perf_counter()
        mcli.create_run(config, timeout=60)
        latencies.append(time.perf_counter() - started)
        if time.monotonic() > deadline:
            break
    return {"latencies_s": latencies}


def create_concurrent(mcli: Any, job: dict[str, Any]) -> dict[str, Any]:
    prefix = job["prefix"]
    mcli.create_run(_config(mcli, f"{prefix}-warm", "true"), timeout=60)
    configs = [_config(mcli, f"{prefix}-{i}", "true") for i in range(int(job["n"]))]
    started = time.perf_counter()
    cpu = time.process_time()
    futures = [mcli.create_run(config, future=True) for config in configs]
    names = [future.result(timeout=float(job.get("max_seconds", 120))).name for future in futures]
    wall = time.perf_counter() - started
    assert len(set(names)) == len(configs), names
    return {"wall_s": wall, "cpu_s": time.process_time() - cpu, "count": len(names)}


def get_runs(mcli: Any, job: dict[str, Any], client: str) -> dict[str, Any]:
    limit = int(job["limit"])
    started = time.perf_counter()
    cpu = time.process_time()
    pages = 1
    details = bool(job.get("include_details"))
    if client == "ours":
        runs = mcli.get_runs(limit=limit, timeout=120, include_details=details)
        count = len(runs)
    else:
        # 0.8.3 returns the first page only; the server caps a page, so follow `next_page` up to `limit`.
        page = mcli.get_runs(limit=limit, timeout=120, include_details=details)
        count = len([r for r in page])
        while page.has_next_page and count < limit:
            page = page.next_page(limit=limit - count)
            count += len([r for r in page])
            pages += 1
    wall = time.perf_counter() - started
    return {"wall_s": wall, "cpu_s": time.process_time() - cpu, "count": count, "pages": pages}


def follow(mcli: Any, job: dict[str, Any], client: str) -> dict[str, Any]:
    """The warm follow: the run's log followed once to warm both clients alike (first-call imports and set-up,
    connection pools), then followed again and measured, so the figure is the stream itself. With `"cold": true`,
    the first follow of the process is the one measured."""

    def follow_once() -> tuple[int, int]:
        lines = chars = 0
        if client == "ours":
            for line in mcli.follow_run_logs(job["run"], timeout=60):
                lines += 1
                chars += len(line)
        else:
            for chunk in mcli.follow_run_logs(job["run"]):
                lines += len(chunk.splitlines())  # what a user who wants lines must do with raw chunks
                chars += len(chunk)
        return lines, chars

    mcli.get_runs(limit=1)
    if not job.get("cold"):
        follow_once()
    started = time.perf_counter()
    cpu = time.process_time()
    lines, chars = follow_once()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "cpu_s": time.process_time() - cpu, "lines": lines, "bytes": chars}


def live(mcli: Any, job: dict[str, Any], client: str) -> dict[str, Any]:
    command = LIVE_COMMAND.format(pause=job["pause"], count=job["count"], interval=job["interval"])
    run = mcli.create_run(_config(mcli, job["name"], command), timeout=60)
    latencies_ms = []
    partial = ""
    if client == "ours":
        for line in mcli.follow_run_logs(run, timeout=60):
            now = time.time_ns()
            if line.strip().isdigit():
                latencies_ms.append((now - int(line)) / 1e6)
    else:
        for chunk in mcli.follow_run_logs(run):
            now = time.time_ns()
            *complete, partial = (partial + chunk).split("\n")
            latencies_ms.extend((now - int(text)) / 1e6 for text in complete if text.strip().isdigit())
    return {"latencies_ms": latencies_ms}


def create_live(mcli: Any, job: dict[str, Any]) -> dict[str, Any]:
    """Create a run that prints `count` timestamped lines after a pause (followed by `fanout` processes)."""
    command = LIVE_COMMAND.format(pause=job["pause"], count=job["count"], interval=job["interval"])
    run = mcli.create_run(_config(mcli, job["name"], command), timeout=60)
    return {"name": run.name}


def fanout(job: dict[str, Any]) -> dict[str, Any]:
    """`followers` mcli.aio followers of one live run in this process; latency of every line each one sees."""
    import mcli.aio

    async def follow(latencies: list[float]) -> int:
        seen = 0
        async with await mcli.aio.follow_run_logs(job["run"], timeout=60) as stream:
            async for line in stream:
                now = time.time_ns()
                if line.strip().isdigit():
                    latencies.append((now - int(line)) / 1e6)
                    seen += 1
        return seen

    async def main() -> dict[str, Any]:
        latencies: list[float] = []
        counts = await asyncio.gather(*(follow(latencies) for _ in range(int(job["followers"]))))
        return {"lines": sum(counts), "latencies_ms": latencies}

    return asyncio.run(main())


def setup_log_run(mcli: Any, job: dict[str, Any]) -> dict[str, Any]:
    """Create the bulk-log run and wait until it completes (not measured)."""
    run = mcli.create_run(_config(mcli, job["name"], BULK_COMMAND.format(lines=job["lines"])), timeout=60)
    done = _terminal(mcli, run, float(job.get("max_seconds", 300)))
    return {"id": run.run_uid, "name": run.name, "status": str(done.status)}


def import_only(mcli: Any, job: dict[str, Any]) -> dict[str, Any]:
    return {}


# -- ceiling and server-only jobs (our venv) -------------------------------------------------------------------


def _chunks(path: str, size: int) -> list[bytes]:
    with open(path, "rb") as fh:
        data = fh.read()
    return [data[i : i + size] for i in range(0, len(data), size)]


def ceiling_server(job: dict[str, Any]) -> None:
    """A bare websockets server sending the log as getRunLogsV2 `next` messages; prints its port, runs until killed."""
    import websockets.asyncio.server as wss

    messages = []
    offset = 0
    for chunk in _chunks(job["path"], int(job["chunk_size"])):
        offset += len(chunk)
        payload = {
            "data": {"getRunLogsV2": {"chunk": base64.b64encode(chunk).decode("ascii"), "endOffset": offset}}
        }
        messages.append(json.dumps({"id": "1", "type": "next", "payload": payload}))
    done = json.dumps({"id": "1", "type": "complete"})

    async def handler(ws: Any) -> None:
        await ws.recv()  # the client's "subscribe"
        for message in messages:
            await ws.send(message)
        await ws.send(done)

    async def main() -> None:
        async with wss.serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(json.dumps({"port": port, "messages": len(messages)}), flush=True)
            await asyncio.sleep(float(job.get("max_seconds", 600)))

    asyncio.run(main())


def ceiling_client(job: dict[str, Any]) -> dict[str, Any]:
    """The bare client: JSON, base64, UTF-8 decode and a split into lines (carrying a cut line); nothing else.

    With `"floor": true`, the least a client that hands every line to Python code can do, in one thread: the chunk
    sliced out of the JSON text (`mcli.core.websocket.parse_message`), SIMD base64 (pybase64), mcli's LineSplitter
    (`splitlines`, newlines kept) and a loop over every line, as a user's `for line in ...` runs. No session, no
    resumable stream, no run lookup, no second thread: what is left of any SDK's follow is above it.
    """
    import websockets.asyncio.client as wsc

    floor = bool(job.get("floor"))
    if floor:
        import pybase64

        from mcli.core.websocket import parse_message
        from mcli.logs import LineSplitter

    async def main() -> dict[str, Any]:
        lines = 0
        nbytes = 0
        pending = ""
        splitter = LineSplitter() if floor else None
        started = time.perf_counter()
        cpu = time.process_time()
        async with wsc.connect(job["url"], max_size=None, compression=None) as ws:
            await ws.send(json.dumps({"id": "1", "type": "subscribe"}))
            while True:
                raw = await ws.recv()
                message = parse_message(raw) if floor else json.loads(raw)
                if message["type"] == "complete":
                    break
                chunk = message["payload"]["data"]["getRunLogsV2"]["chunk"]
                if splitter is not None:
                    for line in splitter.feed(pybase64.b64decode(chunk, validate=True)):
                        lines += 1
                        nbytes += len(line)
                    continue
                data = base64.b64decode(chunk)
                nbytes += len(data)
                pieces = (pending + data.decode("utf-8")).split("\n")
                pending = pieces.pop()  # a line cut by the chunk boundary waits for its end
                lines += len(pieces)
        lines += len(splitter.finish()) if splitter is not None else 1 if pending else 0
        return {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu, "lines": lines,
                "bytes": nbytes}  # fmt: skip

    async def warm_then_measure() -> dict[str, Any]:
        await main()  # warmed like the clients (driver `follow`): the second follow is measured
        return await main()

    return asyncio.run(warm_then_measure())


SERVER_QUERY = """
query GetRunsPaginated($d: GetRunsPaginatedInput!) {
  getRunsPaginated(getRunsPaginatedData: $d) {
    cursor hasNextPage
    runs { id name status createdAt updatedAt reason createdByEmail priority maxRetries preemptible
      retryOnSystemFailure maxDurationSeconds isDeleted runType startedAt completedAt
      resumptions { executionIndex clusterName cpus gpuType gpus nodes startTime endTime status reason } }
  }
}"""


def server_list(job: dict[str, Any]) -> dict[str, Any]:
    """Sequential raw POSTs of our own getRunsPaginated document with details, `limit` runs in one page."""
    import urllib.request
    from pathlib import Path

    queries = Path(__file__).resolve().parents[1] / "mcli" / "graphql" / "queries"
    document = (queries / "get_runs_paginated.graphql").read_text() + (
        queries / "run_fields.graphql"
    ).read_text()
    body = json.dumps(
        {
            "query": document,
            "operationName": "GetRunsPaginated",
            "variables": {"getRunsPaginatedData": {"limit": job["limit"]}, "includeDetails": True},
        }
    ).encode()
    headers = {"Authorization": job["api_key"], "Content-Type": "application/json"}
    latencies = []
    count = 0
    for _ in range(int(job["n"]) + 1):  # the first one warms up
        started = time.perf_counter()
        request = urllib.request.Request(job["url"], data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = response.read()
        latencies.append(time.perf_counter() - started)
        payload = json.loads(answer)
        if "errors" in payload:
            raise RuntimeError(payload["errors"])
        count = len(payload["data"]["getRunsPaginated"]["runs"])
    return {"latencies_s": latencies[1:], "count": count, "bytes": len(answer)}


def server_query(job: dict[str, Any]) -> dict[str, Any]:
    """Sequential raw POSTs of filtered `getRunsPaginated` pages; latency per request, by filter."""
    import aiohttp

    filters: list[dict[str, Any]] = job["filters"]

    async def main() -> dict[str, Any]:
        headers = {"Authorization": job["api_key"], "Content-Type": "application/json"}
        by_filter: dict[str, list[float]] = {f["label"]: [] for f in filters}
        counts: dict[str, int] = {}
        deadline = _deadline(job)
        async with aiohttp.ClientSession(headers=headers) as session:
            for i in range(int(job["n"]) + len(filters)):
                spec = filters[i % len(filters)]
                body = {
                    "query": SERVER_QUERY,
                    "variables": {"d": {"filters": spec["filters"], "limit": job["limit"]}},
                }
                started = time.perf_counter()
                async with session.post(job["url"], json=body) as response:
                    payload = await response.json()
                elapsed = time.perf_counter() - started
                if "errors" in payload:
                    raise RuntimeError(payload["errors"])
                counts[spec["label"]] = len(payload["data"]["getRunsPaginated"]["runs"])
                if i >= len(filters):  # the first round warms up
                    by_filter[spec["label"]].append(elapsed)
                if time.monotonic() > deadline:
                    break
        return {"latencies_s": by_filter, "page_sizes": counts}

    return asyncio.run(main())


def cold_breakdown(job: dict[str, Any]) -> dict[str, Any]:
    """Ours only, in a fresh interpreter: where a first `mcli.get_runs()` spends its time.

    import: `import mcli` plus everything the first call loads; connect: the first call's time in the session
    core minus the second's (same request, open connection); request: the second call's time in the session core;
    work: the rest of the second call (turning the answer into Runs); first-call set-up: the rest of the first call
    (the background loop thread, lazily loaded modules).
    """
    started = time.perf_counter()
    import mcli

    mcli.get_runs  # noqa: B018 - loads the SDK, as the first call does
    import mcli.aio

    imported = time.perf_counter()
    from mcli.core.session import AsyncSession

    spent = [0.0]
    execute = AsyncSession.execute

    async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        begun = time.perf_counter()
        try:
            return await execute(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - begun

    AsyncSession.execute = timed  # type: ignore[method-assign]
    mcli.get_runs()
    first = time.perf_counter()
    first_transport, spent[0] = spent[0], 0.0
    mcli.get_runs()
    second = time.perf_counter()
    request = spent[0]
    work = second - first - request
    return {
        "import": imported - started,
        "connect": max(0.0, first_transport - request),
        "request": request,
        "work": work,
        "first_call_setup": max(0.0, (first - imported) - first_transport - work),
    }


def main() -> None:
    job = json.loads(sys.argv[1])
    kind = job["kind"]
    if kind == "ceiling_server":
        ceiling_server(job)
        return
    if kind == "cold_breakdown":
        print(json.dumps(cold_breakdown(job)), flush=True)
        os._exit(0)
    if kind in ("ceiling_client", "server_query", "server_list", "fanout"):
        jobs = {"ceiling_client": ceiling_client, "server_query": server_query, "server_list": server_list,
                "fanout": fanout}  # fmt: skip
        result = jobs[kind](job)
    else:
        client = job["client"]
        import warnings

        warnings.simplefilter("ignore")  # 0.8.3 warns on `import mcli.sdk` and on some calls
        import mcli

        where = os.path.dirname(mcli.__file__)
        # Ours imports lazily on first attribute access: load everything now, outside the timed region
        # (import time is its own figure), as 0.8.3 already did in `import mcli`.
        for name in ("RunConfig", "create_run", "get_runs", "follow_run_logs", "wait_for_run_status"):
            getattr(mcli, name)
        if client == "ours":
            import importlib

            importlib.import_module("mcli.aio")  # the transport layer (gql, h11), imported on first call
            # The websocket stack, imported by the first subscription (0.8.3 loads its own in `import mcli`).
            importlib.import_module("mcli.core.websocket")
        result = {
            "create_seq": lambda: create_seq(mcli, job),
            "create_concurrent": lambda: create_concurrent(mcli, job),
            "get_runs": lambda: get_runs(mcli, job, client),
            "follow": lambda: follow(mcli, job, client),
            "live": lambda: live(mcli, job, client),
            "setup_log_run": lambda: setup_log_run(mcli, job),
            "create_live": lambda: create_live(mcli, job),
            "import": lambda: import_only(mcli, job),
        }[kind]()
        result["mcli_path"] = where
    print(json.dumps(result), flush=True)
    # Background threads of either client must not keep a finished measurement alive.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
