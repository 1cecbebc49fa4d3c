"""A server whose start is given up (too slow, or the caller pressed Ctrl-C) is killed, not left orphaned."""

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mcli.local.spawn import ServerStartError, _await_ready


def _ready_pipe_with_pid(pid: int) -> tuple[int, int]:
    read, write = os.pipe()
    os.write(write, f"{pid}\n".encode())  # what a server writes first; its endpoint never comes
    return read, write


def test_interrupted_while_waiting_kills_the_server(tmp_path: Path) -> None:
    server = subprocess.Popen(["sleep", "30"])
    read, write = _ready_pipe_with_pid(server.pid)

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            _await_ready(read, time.monotonic() + 30, tmp_path / "serve.log", 0, None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.close(write)
    try:
        assert server.wait(timeout=5) == -signal.SIGKILL
    finally:
        server.kill()  # no-op once it is gone
        server.wait()


def test_too_slow_a_server_is_killed(tmp_path: Path) -> None:
    server = subprocess.Popen(["sleep", "30"])
    read, write = _ready_pipe_with_pid(server.pid)
    (tmp_path / "serve.log").write_text("still importing\n")
    try:
        with pytest.raises(ServerStartError, match=r"(?s)did not start listening in time.*still importing"):
            _await_ready(read, time.monotonic() + 0.2, tmp_path / "serve.log", 0, None)
    finally:
        os.close(write)
    try:
        assert server.wait(timeout=5) == -signal.SIGKILL
    finally:
        server.kill()  # no-op once it is gone
        server.wait()
