"""Helpers for the Ray tests: a `mcli local serve --executor ray` subprocess and leftover-process checks.

(No `__init__.py` in tests/ray: a package named `ray` there would shadow Ray itself.)
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcli
from mcli import RunStatus

KEY = "ray-test-key-0123456789"
GPUS_PER_NODE = 2
# Nodes report a lost heartbeat within ~1 s instead of Ray's default 30 s, so a removed node fails its run quickly.
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 300,
    "health_check_failure_threshold": 3,
}


@dataclass
class RayCluster:
    cluster: Any
    address: str

    def node_ids(self) -> set[str]:
        return {node.node_id for node in self.cluster.list_all_nodes()}

    def add_worker(self) -> Any:
        node = self.cluster.add_node(num_cpus=1, num_gpus=GPUS_PER_NODE)
        self.cluster.wait_for_nodes()
        return node


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayServer:
    """`python -m mcli.local serve --executor ray` as a subprocess (so it can be SIGKILLed and restarted)."""

    def __init__(self, data_dir: Path, address: str, stop_grace_seconds: float = 1.0) -> None:
        self.data_dir = data_dir
        self.address = address
        self.stop_grace_seconds = stop_grace_seconds
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/graphql"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RayServer:
        args = [
            sys.executable,
            "-m",
            "mcli.local",
            "serve",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        args += ["--data-dir", str(self.data_dir), "--api-key", KEY, "--executor", "ray"]
        args += ["--ray-address", self.address, "--stop-grace-seconds", str(self.stop_grace_seconds)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        output = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        with open(output, "ab") as sink:  # a file, not a pipe: nobody has to drain it
            start = sink.tell()
            self.proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(output, "rb") as log:
                log.seek(start)
                if b"mcli local server listening on" in log.read():
                    return self
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError("the Ray server did not start:\n" + output.read_text()[-4000:])

    def kill(self) -> None:
        """SIGKILL: the server dies mid-run without stopping anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def processes_matching(marker: str) -> list[int]:
    """Processes whose command line contains `marker` (on every simulated node: they share this machine)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or []) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.info["pid"])
        except psutil.Error:
            continue
    return found


def wait_until_gone(marker: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    left = processes_matching(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_matching(marker)
    return left


_SCRIPT = Path(sys.executable).with_name("mcli")
MCLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mcli.cli.main"]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MCLI, *args], env=env, capture_output=True, text=True, timeout=120)


def wait_for(name: str, statuses: set[RunStatus], seconds: float = 60) -> mcli.Run:
    deadline = time.monotonic() + seconds
    while True:
        run = mcli.get_run(name)
        if run.status in statuses:
            return run
        assert time.monotonic() < deadline, f"{name} is still {run.status}"
        time.sleep(0.1)


def wait_for_log(name: str, rank: int, text: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while text not in mcli.get_run_logs(name, rank=rank):
        assert time.monotonic() < deadline, f"{name} rank {rank} never printed {text!r}"
        time.sleep(0.1)
