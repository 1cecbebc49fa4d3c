"""`mcli local serve` as a person runs it: what it prints, what it logs, and how it stops."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mcli

from .helpers import MCLI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    def __init__(self, data_dir: Path, *args: str) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/graphql"
        self.process = subprocess.Popen(
            [*MCLI, "local", "serve", "--port", str(self.port), "--data-dir", str(data_dir), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.banner: list[str] = []
        for line in self.process.stdout:
            self.banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        else:
            raise AssertionError(f"the server did not start: {self.banner} {self.process.stderr}")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; the exit status and everything the server wrote on stderr."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Serve]]:
    started: list[Serve] = []

    def start(*args: str) -> Serve:
        server = Serve(tmp_path / f"data{len(started)}", "--api-key", "serve-test-key-0123456789", *args)
        started.append(server)
        monkeypatch.setenv("MOSAICML_API_ENDPOINT", server.endpoint)
        monkeypatch.setenv("MOSAICML_API_KEY", "serve-test-key-0123456789")
        return server

    yield start  # type: ignore[misc]
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


def test_banner_says_how_to_point_mcli_at_it(serve: type[Serve]) -> None:
    server = serve()
    assert f"  export MOSAICML_API_ENDPOINT={server.endpoint}\n" in server.banner
    assert "  export MOSAICML_API_KEY=serve-test-key-0123456789\n" in server.banner
    assert f"  mcli set endpoint {server.endpoint}\n" in server.banner
    assert "  mcli set api-key serve-test-key-0123456789\n" in server.banner
    assert max(len(line) for line in server.banner) <= 80  # no wrapped line to copy in a small terminal
    assert server.stop() == (0, "\nStopping the server.\n")


def test_one_log_line_per_request_and_cpu_gpu_type(serve: type[Serve]) -> None:
    server = serve()
    run = mcli.create_run(mcli.RunConfig(image="python", command="true", compute={"gpus": 1}))
    assert run.gpu_type == "none"
    mcli.get_runs(limit=1)
    code, err = server.stop()
    lines = err.splitlines()
    assert code == 0
    # "11:08:59 POST CreateRun local@mcli.local 200 7.1 ms"
    assert [line.split()[1:5] for line in lines[:2]] == [
        ["POST", "CreateRun", "local@mcli.local", "200"],
        ["POST", "GetRunsPaginated", "local@mcli.local", "200"],
    ]
    assert all(line.endswith(" ms") for line in lines[:2])


def test_warning_level_logs_nothing_and_a_chosen_gpu_type_is_reported(serve: type[Serve]) -> None:
    server = serve("--log-level", "warning", "--gpu-type", "h100")
    run = mcli.create_run(mcli.RunConfig(image="python", command="true", compute={"gpus": 1}))
    assert run.gpu_type == "h100"
    mcli.wait_for_run_status(run, "COMPLETED", timeout=30)
    assert server.stop() == (0, "\nStopping the server.\n")


def test_ctrl_c_counts_active_runs_and_a_second_one_kills_them(serve: type[Serve]) -> None:
    server = serve("--stop-grace-seconds", "60", "--log-level", "warning")
    run = mcli.create_run(mcli.RunConfig(image="python", command="trap '' TERM; sleep 120", compute={"nodes": 2}))
    mcli.wait_for_run_status(run, "RUNNING", timeout=30)
    server.process.send_signal(signal.SIGINT)
    time.sleep(1)
    assert server.process.poll() is None  # still waiting for the run, which ignores SIGTERM
    started = time.monotonic()
    code, err = server.stop()
    assert time.monotonic() - started < 10
    assert code == 0
    assert err == (
        "\nStopping the server and its 1 active run (each gets 60 s to exit). "
        "Press Ctrl-C again to kill them now.\nKilling the active runs now.\n"
    )


def test_port_in_use_names_the_port_and_suggests_another(serve: type[Serve], tmp_path: Path) -> None:
    server = serve()
    result = subprocess.run(
        [*MCLI, "local", "serve", "--port", str(server.port), "--data-dir", str(tmp_path / "other")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"mcli: error: port {server.port} on 127.0.0.1 is already in use (is another server running?); "
        f"choose another with --port, e.g. --port {server.port + 1}\n"
    )
