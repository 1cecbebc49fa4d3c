"""Start `mcli local serve` as a child process and wait until it answers; stop it again.

One way to run the server beside its caller, for `mcli.testing` and anything else that needs a server in its own
process (so it shares no GIL or event loop with the caller). The child's output goes to a log file, not a pipe, so
nobody has to drain it and it is still there when a start fails. Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The first line `mcli local serve` prints once its socket listens (see `mcli.local.cli`).
LISTENING = "mcli local server listening on "
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
    """Run `mcli local serve ARGS`, wait until its endpoint answers an HTTP request, and return it.

    `--port 0` is the race-free way to get a free port: the endpoint is read from the server's first line.
    `detached` starts it in its own session, so it survives its parent's terminal. On failure the process is
    stopped and `ServerStartError` carries the end of its log.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        offset = log.tell()
        process = subprocess.Popen(
            serve_command(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=detached,
        )
    deadline = time.monotonic() + timeout
    try:
        endpoint = _wait_until_listening(process, log_path, offset, deadline)
        _wait_until_answering(process, endpoint, deadline, log_path, offset)
    except BaseException:
        stop_server_process(process, grace_seconds=5.0)
        raise
    return ServerProcess(process, endpoint, log_path)


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


def _wait_until_listening(
    process: subprocess.Popen[bytes], log_path: Path, offset: int, deadline: float
) -> str:
    while True:
        for line in _log_since(log_path, offset).splitlines():
            if line.startswith(LISTENING):
                return line[len(LISTENING) :].strip()
        if process.poll() is not None:
            raise _failure(f"exited with code {process.returncode} before listening", log_path, offset)
        if time.monotonic() > deadline:
            raise _failure("did not start listening in time", log_path, offset)
        time.sleep(_POLL_SECONDS)


def _wait_until_answering(
    process: subprocess.Popen[bytes], endpoint: str, deadline: float, log_path: Path, offset: int
) -> None:
    """Any HTTP answer counts (an unauthenticated query gets a GraphQL error): the server is serving."""
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
