"""Security tests: every attack runs against a real server process on 127.0.0.1, bounded in count and time.

A `Probe` sends a normal query throughout each attack and records how long each answer took, so that a test can
show the server kept serving. Figures are printed in the terminal summary ("security figures").
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

KEY = "security-key-alice-0123456789"
NORMAL_QUERY = json.dumps(
    {"query": "query Q($d: GetRunsPaginatedInput!) { getRunsPaginated(getRunsPaginatedData: $d) { cursor } }",
     "variables": {"d": {"limit": 1}}}
).encode()
SERVE = Path(__file__).with_name("serve.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`serve.py` as a subprocess with the given limits; samples its peak RSS while it runs."""

    def __init__(
        self, data_dir: Path, limits: dict[str, Any], options: dict[str, Any], env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.env = env
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/graphql"
        self.limits = limits
        self.options = options
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.peak_rss = 0
        self._sampling = False
        self._sampler: threading.Thread | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE), str(self.port), str(self.data_dir), KEY, json.dumps(self.limits),
             json.dumps(self.options)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        ready = threading.Event()

        def drain() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if len(self.output) < 10_000:
                    self.output.append(line)
                if "listening on" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(30) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        assert self.proc is not None
        process = psutil.Process(self.proc.pid)
        while self._sampling:
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, process.memory_info().rss)
            time.sleep(0.02)

    def rss(self) -> int:
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> float:
        """Signal the server and wait for it to exit; returns how long it took (SIGKILL after `timeout`)."""
        self._sampling = False
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None
        started = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                children = psutil.Process(self.proc.pid).children(recursive=True)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
        return time.monotonic() - started


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(
        limits: dict[str, Any] | None = None, seed: int = 0, env: dict[str, str] | None = None, **options: Any
    ) -> Server:
        data_dir = tmp_path / f"data{len(servers)}"
        if seed:
            seed_runs(data_dir, seed)
        server = Server(data_dir, limits or {}, options, env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def post(port: int, body: bytes, key: str | None = KEY, timeout: float = 10) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = key
        conn.request("POST", "/graphql", body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def query(port: int, text: str, variables: dict[str, Any] | None = None, key: str | None = KEY) -> tuple[int, Any]:
    return post(port, json.dumps({"query": text, "variables": variables or {}}).encode(), key)


class Probe:
    """A normal query every `interval` seconds on a fresh connection, from a thread, until stopped."""

    def __init__(self, port: int, interval: float = 0.2, timeout: float = 10) -> None:
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.latencies) + len(self.failures) < 1_000:
            started = time.monotonic()
            try:
                status, body = post(self.port, NORMAL_QUERY, timeout=self.timeout)
                if status != 200 or "errors" in body:
                    self.failures.append(f"{status}: {body}")
                else:
                    self.latencies.append(time.monotonic() - started)
            except OSError as exc:
                self.failures.append(repr(exc))
            self._stop.wait(self.interval)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # One more answer after the attack, so the server is shown to serve once it is over too.
        seen = len(self.latencies) + len(self.failures)
        deadline = time.monotonic() + self.timeout
        while (len(self.latencies) + len(self.failures) <= max(seen, 1)) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.latencies:
            return f"probe: no answers, failures {self.failures[:3]}"
        ordered = sorted(self.latencies)
        return (
            f"probe {len(ordered)} normal queries: p50 {ordered[len(ordered) // 2] * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms, {len(self.failures)} failed"
        )

    def check(self) -> None:
        """Every probe was answered, during the attack and after it."""
        assert not self.failures, self.failures[:5]
        assert len(self.latencies) >= 2, self.summary()


FIGURES: list[str] = []


def report(line: str) -> None:
    FIGURES.append(line)
    print(f"[security] {line}", flush=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("security figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def seed_runs(data_dir: Path, count: int) -> None:
    """`count` finished runs for the default user, written straight into the store before the server starts."""
    import uuid

    from mcli.local.records import Resumption, Run
    from mcli.local.server import DEFAULT_EMAIL, bootstrap, open_store

    bootstrap(data_dir, KEY)
    store = open_store(data_dir)
    try:
        user = store.get_user_by_email(DEFAULT_EMAIL)
        assert user is not None
        base = time.time() - 86400

        def rows() -> Iterator[tuple[Run, Resumption]]:
            for i in range(count):
                at = base + i
                yield (
                    Run(seq=0, id=uuid.uuid4().hex, user_id=user.id, name=f"seeded-{i:06d}", status="COMPLETED",
                        reason=None, created_at=at, updated_at=at, started_at=at, completed_at=at,
                        created_by_email=DEFAULT_EMAIL, priority="medium", max_retries=None, preemptible=False,
                        retry_on_system_failure=False, max_duration_seconds=None, is_deleted=False,
                        run_type="TRAINING", image="seed", command="true",
                        run_input={"env": {}, "parameters": {}, "original": {}}, metadata={},
                        cluster_name="local", gpu_type="none", gpus=0, cpus=0, nodes=1),
                    Resumption(execution_index=0, cluster_name="local", cpus=0, gpu_type="none", gpus=0, nodes=1,
                               start_time=at, end_time=at, status="COMPLETED", reason=None),
                )  # fmt: skip

        store.bulk_insert_runs(rows())
    finally:
        store.close()


@pytest.fixture
def sdk_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Server, str], None]:
    """Point the SDK (in this process) at a server with a key, with an empty config dir."""
    monkeypatch.setenv("MCLI_CONFIG_DIR", str(tmp_path / "mcli-config"))
    monkeypatch.delenv("MCLI_CONFIG_PATH", raising=False)

    def point(server: Server, key: str = KEY) -> None:
        monkeypatch.setenv("MOSAICML_API_ENDPOINT", server.endpoint)
        monkeypatch.setenv("MOSAICML_API_KEY", key)

    return point
