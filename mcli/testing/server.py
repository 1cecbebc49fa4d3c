"""A `mcli local serve` subprocess for tests, and the environment that points `mcli` at it.

The server runs in its own process (no shared GIL or event loop with the code under test) on a free 127.0.0.1
port, over a temporary data dir, with a random key. Stopping it stops its runs; any process that still carries
the server's marker variable afterwards (a run's child that outlived its run) is killed, by PID, so nothing is
left running. A small guard process does the same if the process that started the server dies without stopping
it (SIGKILL, a hard exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from mcli.local.spawn import ServerProcess, ServerStartError, start_server_process, stop_server_process

__all__ = [
    "MapiServer",
    "MapiUser",
    "ServerStartError",
    "async_local_server",
    "local_server",
    "mapi_environment",
    "stop_active_runs",
]

# Set in the server's environment (and so inherited by every run it starts) to find what it left behind.
MARKER_ENV = "MCLI_TESTING_SERVER"
LOG_NAME = "server.log"
# The variables `mcli` reads to choose its endpoint, key and config file (see `mcli.config`).
_ENDPOINT_ENV = "MOSAICML_API_ENDPOINT"
_API_KEY_ENV = "MOSAICML_API_KEY"
_CONFIG_DIR_ENV = "MCLI_CONFIG_DIR"
_CLEARED_ENV = ("MCLI_CONFIG_PATH", "MCLI_MODE")
# After SIGTERM the server stops each run (its grace period, then SIGKILL) and closes open streams (3 s).
_SHUTDOWN_SECONDS = 5.0
# What `pip install 'mcli[local]'` adds (pyproject.toml): the server's modules and psutil for the final sweep.
_LOCAL_EXTRA = ("ariadne", "starlette", "uvicorn", "psutil")


class MapiServer:
    """A local MAPI server in a subprocess. Use `with MapiServer(...) as server:` or `start()`/`stop()`.

    `endpoint` and `api_key` reach it as the default user; `add_user(email)` returns another user's key. Options
    mirror `mcli local serve`'s (None: the server's default); requests are not logged unless `log_level="info"`.
    Without `data_dir` a temporary one is used and removed at `stop()` unless `keep_data`.
    """

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        keep_data: bool = False,
        api_key: str | None = None,
        executor: str | None = None,
        ray_address: str | None = None,
        nodes: int | None = None,
        gpus_per_node: int | None = None,
        gpu_type: str | None = None,
        cluster_name: str | None = None,
        max_concurrent_runs: int | None = None,
        stop_grace_seconds: float = 1.0,
        log_level: str = "warning",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        self._given_data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self.keep_data = keep_data
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.stop_grace_seconds = stop_grace_seconds
        self.startup_timeout = startup_timeout
        options: list[tuple[str, object]] = [
            ("--executor", executor),
            ("--ray-address", ray_address),
            ("--nodes", nodes),
            ("--gpus-per-node", gpus_per_node),
            ("--gpu-type", gpu_type),
            ("--cluster-name", cluster_name),
            ("--max-concurrent-runs", max_concurrent_runs),
        ]
        # "--flag=value": a value such as a random key may start with "-".
        self._args = [
            "--host=127.0.0.1",
            "--port=0",
            f"--api-key={self.api_key}",
            f"--stop-grace-seconds={stop_grace_seconds}",
            f"--log-level={log_level}",
            *(f"{flag}={value}" for flag, value in options if value is not None),
            *extra_args,
        ]
        self._data_dir: Path | None = None
        self._process: ServerProcess | None = None
        self._guard: subprocess.Popen[bytes] | None = None
        self._marker = secrets.token_hex(16)
        # Processes `stop()` had to kill after the server exited (their PIDs); empty when the server cleaned up.
        self.leftovers_killed: list[int] = []

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("the server is not started")
        return self._data_dir

    @property
    def endpoint(self) -> str:
        if self._process is None:
            raise RuntimeError("the server is not started")
        return self._process.endpoint

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not started")
        return self._process.pid

    @property
    def log_path(self) -> Path:
        """The server's output (kept with the data dir)."""
        return self.data_dir / LOG_NAME

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.process.poll() is None

    def start(self) -> MapiServer:
        if self._process is not None:
            return self
        _require_local_extra()
        if self._given_data_dir is not None:
            self._data_dir = self._given_data_dir
        else:
            self._data_dir = Path(tempfile.mkdtemp(prefix="mcli-mapi-"))
        try:
            self._process = start_server_process(
                [*self._args, f"--data-dir={self._data_dir}"],
                log_path=self.log_path,
                env={**os.environ, MARKER_ENV: self._marker},
                timeout=self.startup_timeout,
            )
        except BaseException:
            self._remove_data_dir()
            self._data_dir = None
            raise
        self._guard = _start_guard(
            self._process.pid, self._marker, self.stop_grace_seconds, self._temporary_dir()
        )
        return self

    def stop(self) -> None:
        """Stop the server and its runs; kill any process it left behind; remove a temporary data dir."""
        if self._process is None:
            return
        process = self._process.process
        self.leftovers_killed = []
        try:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(self.stop_grace_seconds + _SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                # A run's child that left the run's process group can hold the run's output open, and the
                # server waits for that output to end: kill such strays first, then give it time again.
                self.leftovers_killed = _kill_marked(self._marker, process.pid, sparing=process.pid)
                stop_server_process(process, grace_seconds=_SHUTDOWN_SECONDS)
        finally:
            self.leftovers_killed += _kill_marked(self._marker, process.pid, sparing=None)
            self._process = None
            self._remove_data_dir()
            if self._guard is not None:
                _dismiss_guard(self._guard)
                self._guard = None

    def add_user(self, email: str) -> str:
        """A new API key for `email` (a user sees only their own runs), creating the user if needed."""
        from mcli.local.server import add_user

        return add_user(self.data_dir, email)

    def new_user(self, email: str | None = None) -> MapiUser:
        """A new user of this server (default: a random email), to point `mapi_environment` at."""
        email = email or f"user-{secrets.token_hex(4)}@mcli.test"
        return MapiUser(self, email, self.add_user(email))

    def environment(self) -> dict[str, str]:
        """The variables that point `mcli` (SDK and CLI, in this or another process) at this server."""
        return {_ENDPOINT_ENV: self.endpoint, _API_KEY_ENV: self.api_key}

    def _temporary_dir(self) -> Path | None:
        """The data dir if `stop()` removes it."""
        return self._data_dir if self._given_data_dir is None and not self.keep_data else None

    def _remove_data_dir(self) -> None:
        temporary = self._temporary_dir()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)

    def __enter__(self) -> MapiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._process.endpoint if self._process is not None else "not started"
        return f"<MapiServer {where}>"


@dataclass(frozen=True)
class MapiUser:
    """One user of a `MapiServer`: sees only their own runs. `mapi_env` gives each test a new one."""

    server: MapiServer
    email: str
    api_key: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def environment(self) -> dict[str, str]:
        """The variables that point `mcli` (SDK and CLI, in this or another process) at this user."""
        return {_ENDPOINT_ENV: self.endpoint, _API_KEY_ENV: self.api_key}


# The guard: a small process that stops the server if this process dies without stopping it (killed, or a
# hard exit such as pytest-timeout's thread method), so that nothing is left running even then.
_GUARD_ENTRY = "from mcli.testing.server import _guard_main; _guard_main()"
_DISMISSED = b"stopped"


def _start_guard(
    pid: int, marker: str, grace_seconds: float, temporary_dir: Path | None
) -> subprocess.Popen[bytes]:
    import psutil

    created = psutil.Process(pid).create_time()
    argv = [str(pid), repr(created), marker, str(grace_seconds), str(temporary_dir or "")]
    return subprocess.Popen(
        [sys.executable, "-c", _GUARD_ENTRY, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C or hang-up meant for this process must not end the guard
    )


def _dismiss_guard(guard: subprocess.Popen[bytes]) -> None:
    assert guard.stdin is not None
    with contextlib.suppress(OSError):
        guard.stdin.write(_DISMISSED)
        guard.stdin.close()
    try:
        guard.wait(5)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


def _guard_main() -> None:
    """The guard process: wait for its stdin to end; unless dismissed, stop the server as `stop()` would."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid, created, marker, grace, temporary_dir = sys.argv[1:6]
    if sys.stdin.buffer.read() == _DISMISSED:
        return
    import psutil

    try:
        server: psutil.Process | None = psutil.Process(int(pid))
        if server is not None and server.create_time() != float(created):  # the pid was reused
            server = None
    except psutil.Error:
        server = None
    if server is not None:
        with contextlib.suppress(psutil.Error):
            server.terminate()
            try:
                server.wait(float(grace) + _SHUTDOWN_SECONDS)
            except psutil.TimeoutExpired:
                _kill_marked(marker, int(pid), sparing=server.pid)
                server.kill()
    _kill_marked(marker, int(pid), sparing=None)
    if temporary_dir:
        shutil.rmtree(temporary_dir, ignore_errors=True)


def stop_active_runs() -> list[str]:
    """Stop the runs of the user `mcli` points at that are still active (without waiting); their names."""
    import mcli

    unfinished = [status for status in mcli.RunStatus if not status.is_terminal()]
    active = mcli.get_runs(statuses=unfinished, include_details=False)
    if active:
        mcli.stop_runs(active)
    return [run.name for run in active]


def _require_local_extra() -> None:
    missing = [name for name in _LOCAL_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ServerStartError(
            f"the local MAPI server needs {', '.join(missing)}: install mcli with its local extra, "
            "pip install 'mcli[local]'"
        )


def _kill_marked(marker: str, server_pid: int, *, sparing: int | None) -> list[int]:
    """SIGKILL every process of ours whose environment carries `marker` (the server) or names the server as the
    one that started it (its runs: they do not inherit the server's environment), except `sparing`; their PIDs."""
    import psutil

    from mcli.local.runpolicy import SERVER_PID_ENV

    own_uid = os.getuid()
    found: list[psutil.Process] = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.pid == sparing or process.uids().real != own_uid:
                continue
            environ = process.environ()
            if environ.get(MARKER_ENV) == marker or environ.get(SERVER_PID_ENV) == str(server_pid):
                process.kill()
                found.append(process)
    psutil.wait_procs(found, timeout=5)
    return [process.pid for process in found]


@contextlib.contextmanager
def local_server(**options: Any) -> Iterator[MapiServer]:
    """`with local_server(nodes=4) as server:` a started `MapiServer` (options as its constructor's)."""
    with MapiServer(**options) as server:
        yield server


@contextlib.asynccontextmanager
async def async_local_server(**options: Any) -> AsyncIterator[MapiServer]:
    """`async with async_local_server() as server:`: starts and stops in a worker thread, not blocking the loop."""
    server = MapiServer(**options)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


class _Reachable(Protocol):
    @property
    def endpoint(self) -> str: ...

    @property
    def api_key(self) -> str | None: ...


@contextlib.contextmanager
def mapi_environment(
    server: _Reachable, *, config_dir: str | os.PathLike[str] | None = None
) -> Iterator[Path]:
    """Point `mcli` in this process (and the processes it starts) at `server`, then restore everything.

    `server` is anything with an `endpoint` and an `api_key` (a `MapiServer`, a `MapiUser`, a `LocalServer`);
    an `api_key` of None leaves no key in the environment, for testing what happens without one. Sets the
    endpoint and key variables, an empty config home (`config_dir`, else a temporary one: `mcli` never reads or
    writes the user's `~/.mosaic`), and clears the mode and config-path variables. Yields the config dir. On exit
    the SDK's cached connection is closed, so the next call resolves its endpoint afresh.
    """
    with contextlib.ExitStack() as stack:
        if config_dir is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcli-config-")))
        else:
            home = Path(config_dir)
        wanted: dict[str, str | None] = {
            _ENDPOINT_ENV: server.endpoint,
            _API_KEY_ENV: server.api_key,
            _CONFIG_DIR_ENV: str(home),
            **dict.fromkeys(_CLEARED_ENV),
        }
        saved = {name: os.environ.get(name) for name in wanted}
        _set_environ(wanted)
        try:
            yield home
        finally:
            _close_sdk_session()
            _set_environ(saved)


def _set_environ(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _close_sdk_session() -> None:
    # Only if the SDK was used: importing it here would make every test pay for it.
    connection = sys.modules.get("mcli.connection")
    if connection is not None:
        connection.close_background_session()
