"""Crash safety: SIGKILL the server while runs are active and a client follows a log, then restart it on the same
data dir and port. Finished runs and logs are intact, active runs are reconciled with a reason, the leftover run
processes are gone, and the follower resumes and finishes (or ends with a clear error) -- it never hangs."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

import mcli
import mcli.aio

from .conftest import KEY, ServerProcess, report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.helpers import Api, WsClient

LIVE = 'i=0; while [ $i -lt 100000 ]; do echo "live line $i"; i=$((i+1)); sleep 0.02; done'
FOLLOW_BOUND = 60.0


class Follower(threading.Thread):
    """mcli.aio.follow_run_logs on its own event loop in a thread; keeps lines, the error and the reconnects."""

    def __init__(self, name: str) -> None:
        super().__init__(daemon=True)
        self.run_name = name
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self.reconnects = 0
        self.finished = False

    def run(self) -> None:
        async def follow() -> None:
            stream = await mcli.aio.follow_run_logs(self.run_name, timeout=10)
            try:
                async for line in stream:
                    self.lines.append(line)
            finally:
                self.reconnects = stream.reconnects
                await stream.aclose()

        try:
            asyncio.run(follow())
            self.finished = True
        except BaseException as exc:
            self.error = exc


def test_sigkill_and_restart(
    spawn_server: Callable[..., ServerProcess], sdk_env: Callable[[str, str | None], None], tmp_path: Path
) -> None:
    data_dir = tmp_path / "crash-data"
    first = spawn_server(data_dir=data_dir)
    sdk_env(first.endpoint, KEY)
    api = Api(first.endpoint, KEY)

    async def setup() -> tuple[bytes, dict[str, Any]]:
        await api.create(runName="finished", command='for i in 1 2 3 4 5; do echo "done $i"; done; echo "last"')
        await api.create(runName="live-a", command=LIVE)
        await api.create(runName="live-b", command="echo started; exec sleep 300")
        finished = await api.wait("finished")
        await api.wait("live-a", {"RUNNING"})
        await api.wait("live-b", {"RUNNING"})
        ws = WsClient(first.endpoint)
        await ws.connect(KEY)
        log, _ = await ws.logs(name="finished")
        await ws.close()
        return log, finished

    finished_log, finished_before = asyncio.run(setup())
    assert finished_log == b"done 1\ndone 2\ndone 3\ndone 4\ndone 5\nlast\n"

    follower = Follower("live-a")
    follower.start()
    deadline = time.monotonic() + 20
    while len(follower.lines) < 20 and time.monotonic() < deadline and follower.is_alive():
        time.sleep(0.02)
    assert len(follower.lines) >= 20, (follower.lines, follower.error)

    time.sleep(0.3)  # let the children be sampled
    old_children = [p for pid, p in first.seen.items() if pid != first.pid]
    assert old_children, "the run processes were not seen"
    first.kill()
    killed_at = time.monotonic()
    time.sleep(0.5)  # the follower notices the drop and starts reconnecting against a dead port
    second = spawn_server(data_dir=data_dir, port=first.port)
    restart_seconds = time.monotonic() - killed_at

    follower.join(FOLLOW_BOUND)
    assert not follower.is_alive(), "the follower hung after the restart"
    api2 = Api(second.endpoint, KEY)

    async def after() -> dict[str, Any]:
        ws = WsClient(second.endpoint, "graphql-ws")
        await ws.connect(KEY)
        try:
            return {
                "finished": await api2.get("finished"),
                "live-a": await api2.get("live-a"),
                "live-b": await api2.get("live-b"),
                "finished-log": (await ws.logs(name="finished"))[0],
                "live-a-log": (await ws.logs(name="live-a"))[0],
            }
        finally:
            await ws.close()

    state = asyncio.run(after())
    # Finished runs and their logs are intact.
    assert state["finished"]["status"] == "COMPLETED"
    assert state["finished"]["completedAt"] == finished_before["completedAt"]
    assert state["finished-log"] == finished_log
    # Active runs were reconciled, with a reason.
    for name in ("live-a", "live-b"):
        run = state[name]
        assert run["status"] == "FAILED", run
        assert "restarted" in (run["reason"] or ""), run
    # The runs' processes from before the crash were killed by the reconciliation.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                                              for p in old_children if _exists(p)):
        time.sleep(0.1)
    survivors = [p.pid for p in old_children if _exists(p) and p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"run processes survived the restart: {survivors}"
    # The follower either resumed and finished with the exact log, or ended with a clear error.
    if follower.error is None:
        assert follower.finished
        assert "".join(follower.lines).encode() == state["live-a-log"], "lines lost or repeated across the restart"
        outcome = f"resumed and finished with {len(follower.lines)} lines"
    else:
        assert isinstance(follower.error, mcli.MCLIException), repr(follower.error)
        assert str(follower.error), repr(follower.error)
        outcome = f"ended with {type(follower.error).__name__}: {follower.error}"
    report(
        f"crash: server restarted {restart_seconds:.1f}s after SIGKILL; follower {outcome}; "
        f"{follower.reconnects} reconnect attempts"
    )
    assert follower.error is None, "the follower should resume: the server was back well within its retry budget"


def _exists(proc: psutil.Process) -> bool:
    try:
        return proc.is_running()
    except psutil.Error:
        return False
