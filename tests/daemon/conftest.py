"""A new user with an empty HOME who sets MOSAICML_API_ENDPOINT=local, and whose daemons the test stops."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from mcli.local.daemon import RECORD_NAME, LocalDaemon, read_record, stop_daemon, wait_gone

MCLI = str(Path(sys.executable).with_name("mcli"))


@dataclass
class LocalUser:
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
        return subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def mcli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MCLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def serve_processes(self) -> list[psutil.Process]:
        """Every `mcli.local serve` process over this user's data dir."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if "mcli.local" in cmdline and "serve" in cmdline and str(self.data_dir) in cmdline:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        return found


@pytest.fixture
def user(tmp_path: Path) -> Iterator[LocalUser]:
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
