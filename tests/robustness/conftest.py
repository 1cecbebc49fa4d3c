"""Robustness tests: every server gets its own temporary data dir and a free 127.0.0.1 port, and every process a
test starts is stopped by that test (by PID; nothing is ever killed by name)."""

from __future__ import annotations

import contextlib
import functools
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from mcli.local import LocalServer
from mcli.testing import mapi_environment

KEY = "robust-key-alice-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m mcli.local serve` as a subprocess; remembers every process it (and its runs) started."""

    def __init__(self, data_dir: Path, *, port: int | None = None, env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = env
        self.extra_args = extra_args or []
        self.endpoint = f"http://127.0.0.1:{self.port}/graphql"
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.seen: dict[int, psutil.Process] = {}  # pid -> process, the server and every descendant seen
        self.peak_rss = 0
        self._sampler: threading.Thread | None = None
        self._sampling = False

    def start(self, timeout: float = 30) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcli.local", "serve", "--port", str(self.port), "--data-dir",
             str(self.data_dir), "--api-key", KEY, "--stop-grace-seconds", "1", *self.extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        self.seen[self.proc.pid] = psutil.Process(self.proc.pid)
        assert self.proc.stdout is not None
        ready = threading.Event()

        def drain(stream: Any) -> None:
            for line in stream:
                self.output.append(line)
                if "listening on" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        assert self.proc is not None
        server = self.seen[self.proc.pid]
        while self._sampling:
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, server.memory_info().rss)
                for child in server.children(recursive=True):
                    self.seen.setdefault(child.pid, child)
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _stop_sampling(self) -> None:
        self._sampling = False
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None

    def kill(self) -> None:
        """SIGKILL the server process only (its runs are left behind, as in a crash)."""
        self._stop_sampling()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    self.seen.setdefault(child.pid, child)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL after 15 s, then SIGKILL any process of ours still alive."""
        self._stop_sampling()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(10)
        self.reap_leftovers()

    def reap_leftovers(self) -> list[int]:
        left = []
        for pid, proc in self.seen.items():
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:  # same process (create time)
                    left.append(pid)
                    proc.kill()
        return left


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def spawn(**kwargs: Any) -> ServerProcess:
        kwargs.setdefault("data_dir", tmp_path / f"srv{len(started)}")
        data_dir = kwargs.pop("data_dir")
        server = ServerProcess(data_dir, **kwargs)
        started.append(server)
        return server.start()

    yield spawn
    for server in started:
        server.stop()


@pytest.fixture
def make_local(make_server: Callable[..., LocalServer]) -> Callable[..., LocalServer]:
    """The suite's in-process server factory (tests/conftest.py) with this directory's key."""
    return functools.partial(make_server, api_key=KEY)


@dataclass
class Account:
    endpoint: str
    api_key: str | None


@pytest.fixture
def sdk_env(tmp_path: Path) -> Iterator[Callable[[str, str | None], None]]:
    """Point the SDK at an endpoint with a key (None: no key at all), with an empty config dir."""
    with contextlib.ExitStack() as pointed:

        def configure(endpoint: str, key: str | None) -> None:
            pointed.enter_context(mapi_environment(Account(endpoint, key), config_dir=tmp_path / "mcli-config"))

        yield configure


def add_user(data_dir: Path, email: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "mcli.local", "add-user", email, "--data-dir", str(data_dir)],
        check=True, capture_output=True, text=True, timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


FIGURES: list[str] = []


def report(line: str) -> None:
    """A figure for the test output: printed now (visible with -s) and again in the terminal summary."""
    FIGURES.append(line)
    print(f"[robustness] {line}", flush=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("robustness figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
