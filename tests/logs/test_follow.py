"""Following logs against the real local server: exact, resumable, and correct at the edges."""

import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mcli
from mcli import RunConfig, RunStatus
from mcli.logs import LogLine
from mcli.testing import MapiServer, MapiUser

from .proxy import CuttingProxy

KEY = "logs-test-key-0123456789"  # the key of the servers the restart test starts

# 100,000 lines with multi-byte characters, written over about three seconds.
WRITER = (
    "import sys, time\n"
    "for i in range(100000):\n"
    "    sys.stdout.write(f'line {i} \\u2713 caf\\u00e9 ' + 'x' * (i % 37) + '\\n')\n"
    "    if i % 2500 == 0:\n"
    "        sys.stdout.flush(); time.sleep(0.06)\n"
)
EXPECTED = "".join(f"line {i} ✓ café " + "x" * (i % 37) + "\n" for i in range(100000))


def python_command(source: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(source)}"


@pytest.fixture(scope="module")
def server(mapi_server: MapiServer) -> MapiServer:
    return mapi_server


@pytest.fixture(autouse=True)
def configured(mapi_env: MapiUser) -> MapiUser:
    return mapi_env


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/")[0])


def test_cut_websocket_many_times_during_a_100000_line_follow(
    server: MapiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = mcli.create_run(RunConfig(image="python", command=python_command(WRITER)))
    with CuttingProxy(port_of(server.endpoint)) as proxy:
        monkeypatch.setenv("MOSAICML_API_ENDPOINT", f"http://127.0.0.1:{proxy.port}/graphql")
        lines = mcli.follow_run_logs(run, timeout=30)
        stop = threading.Event()
        cutter = threading.Thread(target=proxy.cut_randomly, args=(stop,))
        cutter.start()
        try:
            received = "".join(lines)
        finally:
            stop.set()
            cutter.join()
    print(f"\nproxy cut the connections {proxy.cuts} times during the follow")
    assert proxy.cuts >= 5
    assert received == EXPECTED  # byte-identical: nothing lost, nothing repeated


def test_a_silent_dead_connection_is_noticed_by_keep_alive(
    server: MapiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mcli.core.websocket.PING_INTERVAL", 0.3)
    monkeypatch.setattr("mcli.core.websocket.PING_TIMEOUT", 0.3)
    run = mcli.create_run(RunConfig(image="python", command="for i in $(seq 1 200); do echo beat $i; sleep 0.01; done"))
    with CuttingProxy(port_of(server.endpoint)) as proxy:
        monkeypatch.setenv("MOSAICML_API_ENDPOINT", f"http://127.0.0.1:{proxy.port}/graphql")
        started = time.monotonic()
        lines = mcli.follow_run_logs(run, timeout=30)
        received = [next(lines)]
        proxy.freeze_open_connections()
        received += list(lines)
    assert time.monotonic() - started < 15
    assert "".join(received) == "".join(f"beat {i}\n" for i in range(1, 201))


def test_single_one_mebibyte_line() -> None:
    run = mcli.create_run(RunConfig(image="python", command=python_command("print('\\u00e9' * 524288)")))
    lines = list(mcli.follow_run_logs(run))
    assert lines == ["é" * 524288 + "\n"]


def test_empty_log_and_finished_run() -> None:
    empty = mcli.create_run(RunConfig(image="python", command="true"))
    mcli.wait_for_run_status(empty, RunStatus.COMPLETED, timeout=30)
    assert list(mcli.follow_run_logs(empty)) == []
    assert mcli.get_run_logs(empty) == ""
    done = mcli.create_run(RunConfig(image="python", command="seq 1 5; printf end"))
    mcli.wait_for_run_status(done, RunStatus.COMPLETED, timeout=30)
    assert list(mcli.follow_run_logs(done)) == ["1\n", "2\n", "3\n", "4\n", "5\n", "end"]


def test_two_ranks_tail_and_timestamps() -> None:
    run = mcli.create_run(RunConfig(image="python", command='for i in 1 2 3; do echo "rank $NODE_RANK says $i"; done',
                                    compute={"nodes": 2}))
    assert "".join(mcli.follow_run_logs(run, rank=1)) == "".join(f"rank 1 says {i}\n" for i in (1, 2, 3))
    assert mcli.get_run_logs(run, rank=0, tail=1) == "rank 0 says 3\n"
    assert mcli.get_run_logs(run, rank=1, resumption=0) == "".join(f"rank 1 says {i}\n" for i in (1, 2, 3))
    with pytest.raises(mcli.BadRequestError):
        mcli.get_run_logs(run, resumption=1)  # it has run once
    stamped = list(mcli.follow_run_logs(run, rank=0, timestamps=True))
    parsed = [LogLine.from_line(line) for line in stamped]
    assert [p.text for p in parsed] == [f"rank 0 says {i}\n" for i in (1, 2, 3)]
    for p in parsed:
        assert p.timestamp is not None and abs(datetime.now(UTC) - p.timestamp) < timedelta(minutes=1)


def test_closing_the_generator_early_unsubscribes() -> None:
    run = mcli.create_run(RunConfig(image="python", command="while true; do echo tick; sleep 0.01; done"))
    lines = mcli.follow_run_logs(run)
    assert next(lines) == "tick\n"
    lines.close()  # must return promptly and leave the run running
    assert mcli.get_run(run).status is RunStatus.RUNNING
    mcli.stop_run(run)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mcli.local", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--api-key", KEY, "--stop-grace-seconds", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def test_server_restart_in_the_middle_of_a_follow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", f"http://127.0.0.1:{port}/graphql")
    monkeypatch.setenv("MOSAICML_API_KEY", KEY)
    first = serve(tmp_path / "data", port)
    second: subprocess.Popen[bytes] | None = None
    try:
        run = mcli.create_run(RunConfig(image="python", command="i=0; while [ $i -lt 400 ]; do echo step $i; i=$((i+1)); sleep 0.01; done"))
        received: list[str] = []
        follower = threading.Thread(target=lambda: received.extend(mcli.follow_run_logs(run, timeout=30)))
        follower.start()
        time.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = serve(tmp_path / "data", port)
        follower.join(timeout=60)
        assert not follower.is_alive(), "the follower hung after the restart"
        final = mcli.get_run(run)
        assert final.status is RunStatus.FAILED and "restart" in (final.reason or "")
        stored = mcli.get_run_logs(run)
        assert "".join(received) == stored  # the follower has exactly the stored log
        assert stored.startswith("step 0\nstep 1\n") and len(received) > 10
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
