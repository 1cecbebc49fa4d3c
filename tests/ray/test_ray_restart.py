"""A Ray server SIGKILLed mid-run: its runs keep running on the cluster, and the restarted server re-attaches."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from ray_helpers import (
    KEY,
    MCLI,
    RayCluster,
    RayServer,
    processes_matching,
    wait_for,
    wait_for_log,
    wait_until_gone,
)

import mcli
from mcli import RunConfig, RunStatus

TERMINAL = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED}


def test_server_killed_and_restarted_mid_run(
    ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RayServer(tmp_path / "data", ray_cluster.address).start()
    env = {
        "MOSAICML_API_ENDPOINT": server.endpoint,
        "MOSAICML_API_KEY": KEY,
        "MCLI_CONFIG_DIR": str(tmp_path / "mcli-config"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    followers: list[subprocess.Popen[str]] = []
    try:
        ticks = 'for i in $(seq 1 80); do echo "rank $NODE_RANK tick $i"; sleep 0.1; done'
        mcli.create_run(
            RunConfig(name="survivor", image="local/x", command=ticks, compute={"gpus": 4, "nodes": 2})
        )
        marker = f"sleep 8{os.getpid() % 1000}.5"
        mcli.create_run(RunConfig(name="orphan", image="local/x", command=f"echo started; {marker}"))
        wait_for("survivor", {RunStatus.RUNNING})
        wait_for("orphan", {RunStatus.RUNNING})
        wait_for_log("orphan", 0, "started")
        for rank in (0, 1):
            # Our CLI follows each rank through the restart (it resumes at the offset it has).
            followers.append(
                subprocess.Popen(
                    [*MCLI, "logs", "-f", "survivor", "--rank", str(rank)],
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        wait_for_log("survivor", 1, "tick 5")

        server.kill()
        # While the server is down, the orphan's actor dies (its worker process, the parent of its command).
        (command,) = [
            pid for pid in processes_matching(marker) if "/bin/sh" in psutil.Process(pid).cmdline()[0]
        ]
        os.kill(psutil.Process(command).ppid(), signal.SIGKILL)
        server.start()

        survivor = wait_for("survivor", TERMINAL, seconds=90)
        assert survivor.status == RunStatus.COMPLETED, survivor.reason
        for rank, follower in enumerate(followers):
            out, err = follower.communicate(timeout=60)
            assert follower.returncode == 0, err
            expected = "".join(f"rank {rank} tick {i}\n" for i in range(1, 81))
            assert out == expected
            assert mcli.get_run_logs("survivor", rank=rank) == expected
            stamped = mcli.get_run_logs("survivor", rank=rank, timestamps=True).splitlines()
            assert [line.split(" ", 1)[1] for line in stamped] == expected.splitlines()
            times = [line.split(" ", 1)[0] for line in stamped]
            assert times == sorted(times)  # each line keeps the time it was written, across the restart

        orphan = wait_for("orphan", TERMINAL, seconds=30)
        assert orphan.status == RunStatus.FAILED
        assert orphan.reason is not None
        assert "restarted" in orphan.reason and "Ray actors are gone" in orphan.reason
        assert wait_until_gone(marker, 10) == []
    finally:
        for follower in followers:
            if follower.poll() is None:
                follower.kill()
                follower.communicate()
        server.stop()


def test_a_clean_shutdown_leaves_ray_runs_running_for_the_next_server(
    ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RayServer(tmp_path / "data", ray_cluster.address).start()
    for name, value in {
        "MOSAICML_API_ENDPOINT": server.endpoint,
        "MOSAICML_API_KEY": KEY,
        "MCLI_CONFIG_DIR": str(tmp_path / "mcli-config"),
    }.items():
        monkeypatch.setenv(name, value)
    try:
        ticks = 'for i in $(seq 1 40); do echo "rank $NODE_RANK tick $i"; sleep 0.1; done'
        mcli.create_run(
            RunConfig(name="outlives", image="local/x", command=ticks, compute={"gpus": 4, "nodes": 2})
        )
        wait_for("outlives", {RunStatus.RUNNING})
        wait_for_log("outlives", 1, "tick 3")
        server.stop()  # SIGTERM: the server exits; the run goes on on the cluster
        assert server.proc is not None and server.proc.returncode == 0
        server.start()
        done = wait_for("outlives", TERMINAL, seconds=90)
        assert done.status == RunStatus.COMPLETED, done.reason
        for rank in (0, 1):
            assert mcli.get_run_logs("outlives", rank=rank) == "".join(
                f"rank {rank} tick {i}\n" for i in range(1, 41)
            )
    finally:
        server.stop()
