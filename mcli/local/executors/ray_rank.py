"""The Ray actor that runs one node rank on its node (see `ray_executor.py`; Ray imports this module there).

The actor starts `/bin/sh -c COMMAND` in its own session, copies the merged output into a log file on its node
with the time of each pipe read, and serves that log from any byte offset, waiting for new bytes (a long poll),
so a server can follow it live and a restarted server can resume where its own copy ends. A guard process
kills the rank's process group if the actor dies (node lost, `ray.kill`), so no orphan outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcli.local.executors.base import prepare_work_dir

PIPE_READ = 256 * 1024
# Waits for end of input, then kills the process group given as its argument.
_GUARD = "import os, sys\nsys.stdin.buffer.read()\ntry: os.killpg(int(sys.argv[1]), 9)\nexcept OSError: pass"


def node_log_root() -> Path:
    """Where rank actors keep their logs on a node: beside Ray's own files (RAY_TMPDIR when set), so whatever
    clears Ray's temporary files clears the logs of actors that died before they could remove them."""
    return Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "mcli-ray-logs"


class RankActor:
    def __init__(self, log_name: str) -> None:
        self.log_path = node_log_root() / log_name
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.size = 0
        # (offset, wall time) of each pipe read, from the oldest offset the server may still ask for.
        self._offsets: list[int] = []
        self._times: list[float] = []
        self._changed = asyncio.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def node(self) -> dict[str, Any]:
        """This actor's node: id, address and a free port there (rank 0's is the run's MASTER_PORT)."""
        import ray

        with socket.socket() as sock:
            sock.bind(("", 0))
            port = int(sock.getsockname()[1])
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "address": ray.util.get_node_ip_address(),
            "free_port": port,
        }

    async def start(
        self, command: str, env: Mapping[str, str], work_dir: str, files: Mapping[str, str]
    ) -> int:
        import ray

        prepare_work_dir(work_dir, files)
        full_env = dict(env)
        # The GPUs Ray gave this actor (none for a CPU-only rank), as the local executor hands out indices.
        full_env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ray.get_gpu_ids())
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=work_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._start_guard(self._proc.pid)
        asyncio.get_running_loop().create_task(self._pump(self._proc))
        return self._proc.pid

    def _start_guard(self, group: int) -> None:
        """A process outside the actor that kills the rank's group once the actor's end of a pipe closes: when
        the actor dies however it dies (its own kill can't run then)."""
        read_end, self._guard_pipe = os.pipe()
        self._guard = subprocess.Popen(
            [sys.executable, "-c", _GUARD, str(group)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(read_end)

    async def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                try:
                    data = os.read(fd, PIPE_READ)
                except BlockingIOError:
                    readable.clear()
                    await readable.wait()
                    continue
                if not data:
                    break
                os.write(self._log_fd, data)
                self._offsets.append(self.size)
                self._times.append(time.time())
                self.size += len(data)
                self._wake()
        finally:
            loop.remove_reader(fd)
            proc.stdout.close()
        self.exit_code = await loop.run_in_executor(None, proc.wait)
        self._wake()

    def _wake(self) -> None:
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    async def read(
        self, offset: int, max_bytes: int, wait_seconds: float
    ) -> tuple[bytes, list[tuple[int, float]], int | None]:
        """Log bytes from `offset` (waiting up to `wait_seconds` for some), the (offset, time) of each pipe read
        they span, and the exit code once the rank has ended and every byte has been read."""
        if offset >= self.size and self.exit_code is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait_seconds)
        data = os.pread(self._log_fd, max(0, min(max_bytes, self.size - offset)), offset)
        first = max(0, bisect_right(self._offsets, offset) - 1)
        # Everything before `offset` is in the server's log now: forget its times.
        del self._offsets[:first], self._times[:first]
        end = offset + len(data)
        spans = [(o, t) for o, t in zip(self._offsets, self._times, strict=True) if o < end]
        done = self.exit_code is not None and end >= self.size
        return data, spans, self.exit_code if done else None

    async def signal(self, sig: int) -> None:
        if self._proc is not None and self.exit_code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    async def cleanup(self) -> None:
        """Before the actor is killed: nothing of the rank may remain, and its node log goes."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        if self._guard is not None:
            # The group is gone; a guard left to fire later could hit a recycled process group id.
            self._guard.kill()
            self._guard.wait()
        os.close(self._log_fd)
        self.log_path.unlink(missing_ok=True)
        # The run's directory (and the server's, then all of them) goes with the last log in it on this node.
        for directory in (self.log_path.parent, self.log_path.parent.parent, self.log_path.parent.parent.parent):
            try:
                directory.rmdir()
            except OSError:
                break
