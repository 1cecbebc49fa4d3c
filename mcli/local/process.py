"""A run's process, watched by the server's event loop through its pipe and a pidfd.

asyncio's own subprocess support (Python 3.11) starts a waiter thread per child; with hundreds of short runs those
threads cost more than the runs. Here the loop polls the output pipe and a Linux pidfd directly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunUser:
    """The account runs execute as (`--run-as`), when the server runs as root."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def lookup(cls, name: str) -> RunUser:
        """The account `name`; ValueError (saying why) when it does not exist or would not isolate anything."""
        import pwd

        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ValueError(f"there is no user {name!r} on this machine") from None
        if entry.pw_uid == 0:
            raise ValueError(f"{name!r} is root: runs as root can read everything the server can")
        if os.geteuid() != 0:
            raise ValueError("only a server running as root can run commands as another user")
        return cls(name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")


def proc_start_time(pid: int) -> str:
    """When process `pid` started (from /proc), to tell it from a later process that reuses the pid.

    "" when there is no such process, or it has exited and waits to be reaped (a zombie).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] in ("Z", "X") else fields[19]


class ChildProcess:
    """`/bin/sh -c COMMAND` in its own session (so its whole group can be signalled), stdout+stderr piped."""

    def __init__(
        self,
        command: str,
        *,
        cwd: str | os.PathLike[str],
        env: Mapping[str, str],
        user: RunUser | None = None,
    ) -> None:
        # As another user: its uid and primary group only (no supplementary group of the server's).
        identity: dict[str, object] = (
            {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}
        )
        self._popen = subprocess.Popen(  # type: ignore[call-overload]
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=env,
            **identity,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self._popen.stdout is not None
        self._output = self._popen.stdout.fileno()
        os.set_blocking(self._output, False)
        self.pid = self._popen.pid
        self.returncode: int | None = None

    async def output(self, size: int) -> AsyncIterator[bytes]:
        """The merged output as it is written, in reads of up to `size` bytes, until the pipe closes."""
        assert self._popen.stdout is not None
        try:
            while True:
                try:
                    data = os.read(self._output, size)
                except BlockingIOError:
                    await _readable(self._output)
                    continue
                if not data:
                    return
                yield data
        finally:
            self._popen.stdout.close()

    async def wait(self) -> int:
        """The exit code; negative for a signal, as asyncio reports it."""
        if self.returncode is None:
            pidfd = os.pidfd_open(self.pid)
            try:
                await _readable(pidfd)
            finally:
                os.close(pidfd)
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = 255  # already reaped elsewhere: its status is gone (asyncio reports 255 too)
            self._popen.returncode = self.returncode  # so Popen does not try to reap it again
        return self.returncode


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
