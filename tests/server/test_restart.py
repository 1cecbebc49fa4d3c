"""The server as a subprocess (`python -m mcli.local serve`): clean SIGTERM shutdown, and SIGKILL recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from .helpers import RESTART_KEY as KEY
from .helpers import Api, ServerProcess, WsClient


def _pids_running(pattern: str) -> list[int]:
    """Processes whose command line contains `pattern` (psutil, so no procps tools are needed)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if pattern in " ".join(process.info["cmdline"] or []):
            found.append(process.info["pid"])
    return found


async def test_first_start_prints_key_and_sigterm_stops_runs(server_process: ServerProcess) -> None:
    lines = server_process.start()
    assert any(server_process.endpoint in line for line in lines)
    assert any("created default user local@mcli.local" in line for line in lines)
    # Only the key's hash is stored: no file under the data dir holds the key itself.
    for path in server_process.data_dir.rglob("*"):
        assert path.is_dir() or KEY.encode() not in path.read_bytes(), path
    api = Api(server_process.endpoint, KEY)
    marker = f"sleep 3{os.getpid() % 1000}.5"
    await api.create(name="long", command=marker)
    await api.wait("long", {"RUNNING"})
    assert server_process.stop(signal.SIGTERM) == 0
    assert _pids_running(marker) == []
    # Same data dir again: no new user, the key still works, the run ended.
    server_process.start()
    run = await Api(server_process.endpoint, KEY).get("long")
    assert run["status"] == "FAILED" and "shut down" in run["reason"]
    assert server_process.stop(signal.SIGINT) == 0


async def test_sigkill_then_restart_reconciles(server_process: ServerProcess) -> None:
    server_process.start()
    api = Api(server_process.endpoint, KEY)
    await api.create(name="finished", command="echo done")
    await api.wait("finished")
    marker = f"sleep 4{os.getpid() % 1000}.25"
    await api.create(name="orphan", command=f"echo running; {marker}")
    await api.wait("orphan", {"RUNNING"})
    # Bytes still in the pipe when the server dies are lost with it; kill only once the line is on disk.
    watcher = WsClient(server_process.endpoint)
    await watcher.connect(KEY)
    try:
        deadline = time.monotonic() + 10
        while (await watcher.logs(name="orphan"))[0] != b"running\n" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await watcher.close()
    server_process.stop(signal.SIGKILL)
    assert _pids_running(marker) != []  # its own process group survived the server

    server_process.start()
    finished = await api.get("finished")
    assert finished["status"] == "COMPLETED"
    orphan = await api.get("orphan")
    assert orphan["status"] == "FAILED" and "restarted" in orphan["reason"]
    assert orphan["completedAt"] is not None
    deadline = time.monotonic() + 5
    while _pids_running(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pids_running(marker) == []  # the leftover process was killed on restart
    client = WsClient(server_process.endpoint)
    await client.connect(KEY)
    try:
        assert (await client.logs(name="finished"))[0] == b"done\n"
        assert (await client.logs(name="orphan", follow=True))[0] == b"running\n"
    finally:
        await client.close()
    server_process.stop(signal.SIGTERM)
