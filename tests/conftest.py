"""Suite-wide isolation (a temporary HOME, no local daemon left running) and the one in-process server factory.

Most tests reach a server through the `mcli.testing` plugin (`mapi_server`, `mapi_env`, `mapi_server_factory`:
`mcli local serve` subprocesses); `make_server` is for the few that need one inside the test process.

`MOSAICML_API_ENDPOINT=local` starts a per-user daemon recorded under the config dir (`~/.mosaic` by default)
that outlives the process that started it. Every test therefore runs under a temporary HOME, and at the end of
the session every daemon recorded anywhere under pytest's temporary directories is stopped and checked gone.
"""

import contextlib
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from mcli.local import LocalServer
from mcli.local.daemon import RECORD_NAME, LocalDaemon, read_record, stop_daemon, wait_gone


@pytest.fixture(scope="session", autouse=True)
def temporary_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield home
    finally:
        if saved is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = saved
        stop_recorded_daemons(tmp_path_factory.getbasetemp())


def stop_recorded_daemons(root: Path) -> None:
    """Stop every daemon recorded under `root`, and its runs, and check each is gone."""
    for record in root.rglob(RECORD_NAME):
        daemon = read_record(record)
        if daemon is not None and daemon.alive():
            stop_daemon(record, force=True)
            assert not daemon.alive(), f"local daemon {daemon.pid} is still running"


MCLI = str(Path(sys.executable).with_name("mcli"))


@dataclass
class LocalUser:
    """A new user with an empty HOME who sets MOSAICML_API_ENDPOINT=local; the test stops their daemons."""

    home: Path
    env: dict[str, str]
    seen: list[LocalDaemon] = field(default_factory=list)

    @property
    def record(self) -> Path:
        return self.home / ".mosaic" / RECORD_NAME

    @property
    def data_dir(self) -> Path:
        return self.home / ".mosaic" / "local-server"

    def daemon(self) -> LocalDaemon | None:
        """The recorded daemon (alive or not); remembered so that the test stops it."""
        daemon = read_record(self.record)
        if daemon is not None:
            self.seen.append(daemon)
        return daemon

    def python(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-c", code, timeout=timeout)

    def mcli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run(MCLI, *args, timeout=timeout)

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def serve_processes(self) -> list[psutil.Process]:
        """Every `mcli.local serve` process over this user's data dir."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if "mcli.local" in cmdline and "serve" in cmdline and any(str(self.data_dir) in arg for arg in cmdline):
                with contextlib.suppress(psutil.NoSuchProcess):
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        found.append(proc)
        return found


@pytest.fixture
def local_user(tmp_path: Path) -> Iterator[LocalUser]:
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MOSAICML_", "MCLI_"))}
    env.update(HOME=str(home), MOSAICML_API_ENDPOINT="local")
    local = LocalUser(home, env)
    yield local
    local.daemon()
    stop_daemon(local.record, force=True)
    for daemon in local.seen:
        if not wait_gone(daemon, 10):
            os.kill(daemon.pid, signal.SIGKILL)
            pytest.fail(f"local daemon {daemon.pid} was still running after the test")
    assert local.serve_processes() == []


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """In-process servers (`LocalServer`), for tests that read a server's internals (`stats`) or set what
    `mcli local serve` has no option for (`keepalive_seconds`): free 127.0.0.1 ports, their own data dirs, all
    stopped afterwards. Keyword arguments are LocalServer's; a directory's conftest may bind its own defaults."""
    with contextlib.ExitStack() as started:
        count = itertools.count()

        def make(**kwargs: Any) -> LocalServer:
            kwargs.setdefault("data_dir", tmp_path / f"server{next(count)}")
            kwargs.setdefault("stop_grace_seconds", 1.0)
            return started.enter_context(LocalServer(host="127.0.0.1", port=0, **kwargs))

        yield make
