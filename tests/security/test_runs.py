"""Runs are isolated from the server and bounded: their environment, what they can read, their node count, how
many run at once, the size of their logs, and what deleting them leaves behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import mcli
from mcli.local.server import add_user

from .conftest import KEY, Server, report

SERVER_SECRET = "server-only-secret-value-0123456789"
BOB_SECRET = "bob-env-secret-value-9876543210"


def _wait(name: str, statuses: tuple[str, ...] = ("COMPLETED", "FAILED", "STOPPED"), timeout: float = 30) -> mcli.Run:
    deadline = time.monotonic() + timeout
    while True:
        run = mcli.get_run(name)
        if run.status.value in statuses or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def _probe_command(data_dir: Path) -> str:
    """What an attacker's run would try: its environment, the data dir, and the server's own environment."""
    return (
        "echo '--- env'; env; "
        f"echo '--- ls'; ls -la {data_dir} 2>&1; "
        f"echo '--- db'; grep -a -o 'bob-env-secret[a-z0-9-]*' {data_dir}/mcli-local.db 2>&1; "
        f"echo '--- grep'; grep -r -a -l -e {BOB_SECRET} -e {KEY} {data_dir} 2>&1; "
        "echo '--- server environ'; tr '\\0' '\\n' < /proc/$PPID/environ 2>&1 | grep -a SECRET; "
        "echo '--- params'; cat \"$PARAMETERS_PATH\"; echo '--- end'"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs the server to run as root")
def test_a_run_sees_its_own_env_only_and_cannot_read_the_data_dir(
    start_server: Callable[..., Server], sdk_at: Callable[..., None]
) -> None:
    server = start_server(
        env={**os.environ, "MOSAICML_API_KEY": SERVER_SECRET, "SERVER_SECRET": SERVER_SECRET}, run_as="nobody"
    )
    bob = add_user(server.data_dir, "bob@example.com")
    sdk_at(server, bob)
    mcli.create_run(mcli.RunConfig(name="bob-run", image="x", command="true", env_variables={"TOKEN": BOB_SECRET}))
    _wait("bob-run")
    sdk_at(server, KEY)
    mcli.create_run(mcli.RunConfig(name="probe", image="x", command=_probe_command(server.data_dir),
                                   env_variables={"MINE": "mine-value"}, parameters={"p": 1}))
    assert _wait("probe").status.value == "COMPLETED"
    log = mcli.get_run_logs("probe")
    env = log.split("--- env\n")[1].split("--- ls\n")[0]
    names = sorted(line.split("=", 1)[0] for line in env.splitlines() if "=" in line)
    report(f"a run's environment (run as nobody): {', '.join(names)}")
    assert "MINE=mine-value" in env and "NODE_RANK=0" in env and "HOME=" in env
    for secret in (SERVER_SECRET, BOB_SECRET, KEY, bob):
        assert secret not in log, f"the run saw {secret!r}"
    assert "Permission denied" in log.split("--- ls\n")[1].split("--- db\n")[0]
    assert str(server.data_dir) not in log.split("--- params\n")[1]  # its parameters live outside the data dir
    assert '"p": 1' in log


def test_the_environment_is_minimal_without_run_as(
    start_server: Callable[..., Server], sdk_at: Callable[..., None]
) -> None:
    server = start_server(env={**os.environ, "MOSAICML_API_KEY": SERVER_SECRET, "SERVER_SECRET": SERVER_SECRET})
    sdk_at(server)
    mcli.create_run(mcli.RunConfig(name="env", image="x", command="env", env_variables={"MINE": "1"}))
    assert _wait("env").status.value == "COMPLETED"
    log = mcli.get_run_logs("env")
    names = {line.split("=", 1)[0] for line in log.splitlines() if "=" in line}
    assert SERVER_SECRET not in log and "SERVER_SECRET" not in names
    assert {"PATH", "HOME", "LANG", "MINE", "NODE_RANK", "WORLD_SIZE", "RUN_NAME"} <= names
    assert len(names) <= 20, sorted(names)


def test_more_nodes_than_the_cluster_has_is_refused(
    start_server: Callable[..., Server], sdk_at: Callable[..., None]
) -> None:
    server = start_server()
    sdk_at(server)
    assert server.proc is not None
    for compute in ({"nodes": 300, "gpus": 0}, {"nodes": 3}):
        with pytest.raises(mcli.MAPIException) as error:
            mcli.create_run(mcli.RunConfig(name="wide", image="x", command="sleep 30", compute=compute))
        assert error.value.status == 400 and "can never fit" in str(error.value), error.value
    assert psutil.Process(server.proc.pid).children(recursive=True) == []
    assert mcli.get_runs() == []
    mcli.create_run(mcli.RunConfig(name="fits", image="x", command="true", compute={"nodes": 2, "gpus": 0}))
    assert _wait("fits").status.value == "COMPLETED"


def test_runs_beyond_the_concurrency_limit_queue(
    start_server: Callable[..., Server], sdk_at: Callable[..., None]
) -> None:
    server = start_server(max_concurrent_runs=4)
    sdk_at(server)
    names = [f"sleeper-{i}" for i in range(6)]
    for name in names:
        mcli.create_run(mcli.RunConfig(name=name, image="x", command="sleep 30"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses = [run.status.value for run in mcli.get_runs()]
        if statuses.count("RUNNING") == 4:
            break
        time.sleep(0.1)
    assert statuses.count("RUNNING") == 4 and statuses.count("QUEUED") == 2, statuses
    mcli.stop_runs(names)


def test_default_concurrency_limit() -> None:
    from mcli.local.placement import Capacity
    from mcli.local.server import DEFAULT_MAX_CONCURRENT_RUNS, LocalServer, ServeOptions

    assert ServeOptions(Path("."), Capacity()).max_concurrent_runs == DEFAULT_MAX_CONCURRENT_RUNS == 32
    assert LocalServer().options.max_concurrent_runs == 32


def test_the_log_cap_cuts_with_a_marker_and_delete_removes_the_logs(
    start_server: Callable[..., Server], sdk_at: Callable[..., None]
) -> None:
    cap = 200_000
    server = start_server(max_log_bytes=cap)
    sdk_at(server)
    # About 5 MB of output in well under a second; the rank keeps running to the end and exits 0.
    command = "yes 0123456789012345678901234567890123456789 | head -c 5000000; echo done-writing >&2"
    started = time.monotonic()
    mcli.create_run(mcli.RunConfig(name="chatty", image="x", command=command, compute={"nodes": 2}))
    assert _wait("chatty").status.value == "COMPLETED"
    took = time.monotonic() - started
    logs = sorted((server.data_dir / "logs").rglob("*.log"))
    assert len(logs) == 2
    for rank in range(2):
        text = mcli.get_run_logs("chatty", rank=rank)
        assert len(text.encode()) <= cap + 200
        assert text.endswith("(--max-log-bytes); the rest of this rank's output was dropped]\n"), text[-300:]
    sizes = [path.stat().st_size for path in logs]
    report(f"log cap {cap:,} B: a rank writing 5,000,000 B kept {max(sizes):,} B (marker included); "
           f"run completed in {took:.1f} s")
    run_id = logs[0].parent.parent.name
    assert (server.data_dir / "runs" / run_id / "work").is_dir()
    mcli.delete_run("chatty")
    assert not any(path.exists() for path in logs)
    assert not (server.data_dir / "logs" / run_id).exists() and not (server.data_dir / "runs" / run_id).exists()
