"""The per-user local daemon behind `MOSAICML_API_ENDPOINT=local`: find it, start it once, stop it.

The daemon is `python -m mcli.local serve` (the same code as `mcli local serve`) on 127.0.0.1 with a port of
its own choosing, over the default data dir, detached from whoever started it so that runs outlive the script
that launched them, as they do on the platform. How to reach it is recorded in `local-daemon.json` beside the
config file (mode 0600, it holds the key). A file lock makes concurrent first uses start one daemon; a record
whose process is gone is stale, and the next use starts a new daemon, which reconciles the runs left active.

The key is generated here and handed to the daemon in its environment (`ps` shows argv, not the environment);
the daemon registers it and drops it from its environment so its runs do not inherit it.

Nothing heavy is imported at module level: finding a running daemon must cost next to nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcli.config import config_path
from mcli.local.paths import DB_NAME, DEFAULT_DATA_DIR
from mcli.local.process import proc_start_time
from mcli.local.spawn import ServerStartError, start_daemon_process

API_KEY_ENV = "MCLI_LOCAL_API_KEY"
RECORD_NAME = "local-daemon.json"
LOG_NAME = "daemon.log"
START_TIMEOUT_SECONDS = 60.0
# Past the daemon's own shutdown budget (each run's SIGTERM-to-SIGKILL grace, then uvicorn's 3 s).
STOP_TIMEOUT_SECONDS = 30.0


class LocalDaemonError(Exception):
    """The local daemon could not be started, or refused to stop; the message says what to do."""


@dataclass(frozen=True)
class LocalDaemon:
    """How to reach a running daemon, as recorded in its record file."""

    pid: int
    proc_start: str
    endpoint: str
    api_key: str = field(repr=False)  # never in a repr (logs, tracebacks)
    data_dir: str
    log: str
    started_at: float

    def alive(self) -> bool:
        """Whether the recorded process still runs (and is not a later process that reuses its pid)."""
        return bool(self.proc_start) and proc_start_time(self.pid) == self.proc_start


def record_path() -> Path:
    """`local-daemon.json` in the config file's directory (`~/.mosaic` unless MCLI_CONFIG_* say otherwise)."""
    return config_path().parent / RECORD_NAME


def read_record(path: Path | None = None) -> LocalDaemon | None:
    """The recorded daemon, alive or not; None when there is no readable record."""
    path = path or record_path()
    try:
        return LocalDaemon(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def running_daemon(path: Path | None = None) -> LocalDaemon | None:
    """The recorded daemon if its process is alive, else None. Never starts one."""
    daemon = read_record(path)
    return daemon if daemon is not None and daemon.alive() else None


_known: dict[Path, LocalDaemon] = {}


def ensure_daemon(*, timeout: float = START_TIMEOUT_SECONDS) -> LocalDaemon:
    """The user's running local daemon, started first if there is none (or only a stale record).

    This is the one entry point the client uses for `MOSAICML_API_ENDPOINT=local`.
    """
    path = record_path()
    known = _known.get(path)
    if known is not None and known.alive():
        return known
    daemon = running_daemon(path)
    if daemon is None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(path):
            daemon = read_record(path)
            if daemon is None or not daemon.alive():
                # A dead daemon's key stays registered in the data dir: reuse it rather than pile up keys.
                daemon = _start(daemon.api_key if daemon is not None else None, timeout)
                _write_record(path, daemon)
    _known[path] = daemon
    return daemon


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the record: one process at a time starts or stops the daemon."""
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_record(path: Path, daemon: LocalDaemon) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(daemon), handle)
    os.replace(temp, path)


def _start(api_key: str | None, timeout: float) -> LocalDaemon:
    from mcli.local.store import new_api_key

    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("ariadne") is None:
        raise LocalDaemonError(
            "MOSAICML_API_ENDPOINT=local needs the local server's dependencies: pip install 'mcli[local]'"
        )
    api_key = api_key or new_api_key()
    data_dir = DEFAULT_DATA_DIR.expanduser()
    log = data_dir / LOG_NAME
    try:
        started = start_daemon_process(
            ["--host=127.0.0.1", "--port=0", f"--data-dir={data_dir}", "--log-level=warning"],
            log_path=log,
            env={**os.environ, API_KEY_ENV: api_key},
            timeout=timeout,
        )
    except ServerStartError as error:
        raise LocalDaemonError(f"the local daemon did not start: {error}") from None
    return LocalDaemon(
        pid=started.pid,
        proc_start=proc_start_time(started.pid),
        endpoint=started.endpoint,
        api_key=api_key,
        data_dir=str(data_dir),
        log=str(log),
        started_at=time.time(),
    )


def active_run_names(daemon: LocalDaemon) -> list[str]:
    """Names of the runs in the daemon's data dir that have not finished, oldest first."""
    from mcli.local.store import Store

    db = Path(daemon.data_dir) / DB_NAME
    if not db.exists():
        return []
    store = Store(db)
    try:
        return [run.name for run in store.active_runs()]
    finally:
        store.close()


def stop_daemon(
    path: Path | None = None, *, force: bool = False, timeout: float = STOP_TIMEOUT_SECONDS
) -> LocalDaemon | None:
    """Stop the daemon recorded at `path` (the user's); returns it, or None when none was running.

    With runs active it refuses (LocalDaemonError naming them) unless `force`, which has the daemon stop
    them as it shuts down. Holds the start lock, so no new daemon starts until this one is gone.
    """
    path = path or record_path()
    if not path.parent.is_dir():
        return None
    with _locked(path):
        daemon = read_record(path)
        if daemon is None or not daemon.alive():
            path.unlink(missing_ok=True)
            return None
        active = active_run_names(daemon)
        if active and not force:
            shown = ", ".join(active[:5]) + (", ..." if len(active) > 5 else "")
            raise LocalDaemonError(
                f"the local daemon has {len(active)} active run(s) ({shown}); wait for them to finish, "
                "stop them with `mcli stop run NAME`, or use `mcli local stop --force` to stop them"
            )
        os.kill(daemon.pid, signal.SIGTERM)
        if not wait_gone(daemon, timeout):
            os.kill(daemon.pid, signal.SIGKILL)
            if not wait_gone(daemon, 5.0):
                raise LocalDaemonError(f"the local daemon (pid {daemon.pid}) did not exit")
        path.unlink(missing_ok=True)
        _known.pop(path, None)
        return daemon


def wait_gone(daemon: LocalDaemon, timeout: float) -> bool:
    """Wait until the daemon's process has exited; False if it still runs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while daemon.alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
