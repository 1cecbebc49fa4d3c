"""Start `mcli local serve` as a child process (or a detached daemon) and wait until it listens; stop it again.

One way to run the server beside its caller, for `mcli.testing`, the local daemon (`mcli.local.daemon`) and
anything else that needs a server in its own process (so it shares no GIL or event loop with the caller). The
server reports its pid at once and its endpoint as soon as it listens through a pipe (`--ready-fd`), so starting
needs no polling and `--port 0` is race-free. Its output goes to a log file (created 0600), not a pipe, so nobody
has to drain it and it is still there when a start fails. Only the standard library is imported at module level.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_POLL_SECONDS = 0.02
_LOG_TAIL_CHARS = 4000


class ServerStartError(RuntimeError):
    """The server process exited or did not answer in time; the message ends with its log."""


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    endpoint: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def serve_command(args: Sequence[str]) -> list[str]:
    """`mcli local serve ARGS` with this interpreter (works where the console script is not on PATH)."""
    return [sys.executable, "-m", "mcli.local", "serve", *args]


def start_server_process(
    args: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    detached: bool = False,
    timeout: float = 60.0,
) -> ServerProcess:
    """Run `mcli local serve ARGS` as a child, wait until its endpoint answers an HTTP request, and return it.

    `detached` starts it in its own session, so it survives its parent's terminal. On failure the process is
    stopped and `ServerStartError` carries the end of its log.
    """
    deadline = time.monotonic() + timeout
    process, ready, offset = _launch(args, log_path, env, session=detached, reparent=False)
    try:
        _, endpoint = _await_ready(ready, deadline, log_path, offset, process)
        _wait_until_answering(process, endpoint, deadline, log_path, offset)
    except BaseException:
        stop_server_process(process, grace_seconds=5.0)
        raise
    return ServerProcess(process, endpoint, log_path)


@dataclass(frozen=True)
class DaemonProcess:
    pid: int
    endpoint: str
    log_path: Path


def start_daemon_process(
    args: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> DaemonProcess:
    """Run `mcli local serve ARGS` detached from this process, and return once it listens.

    It runs in a new session and is re-parented away from this process (started through `sh ... &`), so it
    outlives this process and is never left a zombie of it. Connections made once it listens wait in its
    backlog until it serves them, so no HTTP round trip is spent checking. On failure it is killed and
    `ServerStartError` carries the end of its log.
    """
    deadline = time.monotonic() + timeout
    shell, ready, offset = _launch(args, log_path, env, session=True, reparent=True)
    shell.wait()  # `sh` returns at once, leaving the server running on its own
    pid, endpoint = _await_ready(ready, deadline, log_path, offset, None)
    return DaemonProcess(pid, endpoint, log_path)


def _launch(
    args: Sequence[str], log_path: Path, env: Mapping[str, str] | None, *, session: bool, reparent: bool
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start the server with the write end of a new pipe as its `--ready-fd`; the read end and log offset."""
    read_fd, write_fd = os.pipe()
    command = serve_command([f"--ready-fd={write_fd}", *args])
    if reparent:
        command = ["/bin/sh", "-c", '"$@" &', "sh", *command]
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    output = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        offset = os.fstat(output).st_size
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=dict(env) if env is not None else None,
            cwd=log_path.parent,  # not the caller's directory, which a long-lived server would keep busy
            pass_fds=(write_fd,),
            start_new_session=session,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
        os.close(output)
    return process, read_fd, offset


def _await_ready(
    ready: int, deadline: float, log_path: Path, offset: int, process: subprocess.Popen[bytes] | None
) -> tuple[int, str]:
    """The server's pid and endpoint from its ready pipe (then closed); kills a server that is too slow."""
    data = b""
    timed_out = False
    try:
        while data.count(b"\n") < 2:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([ready], [], [], remaining)[0]:
                timed_out = True
                break
            chunk = os.read(ready, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(ready)
    lines = data.decode().splitlines()
    if data.count(b"\n") >= 2:
        return int(lines[0]), lines[1]
    if timed_out:
        if lines:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(lines[0]), signal.SIGKILL)
        raise _failure("did not start listening in time", log_path, offset)
    code = f" with code {process.wait()}" if process is not None else ""
    raise _failure(f"exited{code} before listening", log_path, offset)


def stop_server_process(process: subprocess.Popen[bytes], *, grace_seconds: float) -> int:
    """SIGTERM (the server then stops its runs), SIGKILL after `grace_seconds`; returns the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
    return process.wait()


def _log_since(log_path: Path, offset: int) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _failure(reason: str, log_path: Path, offset: int) -> ServerStartError:
    output = _log_since(log_path, offset)[-_LOG_TAIL_CHARS:]
    return ServerStartError(f"mcli local serve {reason}; its output ({log_path}):\n{output}")


def _wait_until_answering(
    process: subprocess.Popen[bytes], endpoint: str, deadline: float, log_path: Path, offset: int
) -> None:
    """Any HTTP answer counts (an unauthenticated query gets a GraphQL error): the server is serving."""
    import urllib.error
    import urllib.request

    # No proxy: the endpoint is local, and an http_proxy variable must not route it elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        endpoint,
        data=json.dumps({"query": "{ __typename }"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _failure(f"did not answer at {endpoint} in time", log_path, offset)
        try:
            with opener.open(request, timeout=min(remaining, 10.0)):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            if process.poll() is not None:
                raise _failure(f"exited with code {process.returncode}", log_path, offset) from None
            time.sleep(_POLL_SECONDS)
