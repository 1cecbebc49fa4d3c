"""Runs on a real (simulated multi-node) Ray cluster through the unchanged SDK and CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from ray_helpers import (
    GPUS_PER_NODE,
    MCLI,
    RayCluster,
    RayServer,
    cli,
    processes_matching,
    wait_for,
    wait_for_log,
    wait_until_gone,
)

import mcli
from mcli import InstanceTypeUnavailable, RunConfig, RunStatus


def _node_log_dir_exists(run_id: str) -> bool:
    from mcli.local.executors.ray_rank import node_log_root

    return any(node_log_root().glob(f"*/{run_id}-*"))


def test_two_node_run_lands_on_two_nodes_with_exact_logs(
    ray_cluster: RayCluster, sdk_env: dict[str, str]
) -> None:
    command = (
        'for i in $(seq 1 500); do echo "rank $NODE_RANK line $i"; done; '
        'echo "world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT gpus=$CUDA_VISIBLE_DEVICES"'
    )
    config = RunConfig(name="two-nodes", image="local/x", command=command, compute={"gpus": 4, "nodes": 2})
    run = mcli.create_run(config)
    done = wait_for(run.name, {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED})
    assert done.status == RunStatus.COMPLETED, done.reason

    nodes = sorted(done.nodes, key=lambda node: node.rank or 0)
    assert [node.rank for node in nodes] == [0, 1]
    names = [node.name for node in nodes]
    assert len(set(names)) == 2 and set(names) <= ray_cluster.node_ids()  # two distinct Ray nodes, by node id
    masters = set()
    for rank in (0, 1):
        lines = mcli.get_run_logs(run.name, rank=rank).splitlines()
        assert lines[:500] == [f"rank {rank} line {i}" for i in range(1, 501)]
        assert len(lines) == 501
        world, master, gpus = lines[500].split()
        assert world == "world=2"
        masters.add(master)
        assert len(gpus.removeprefix("gpus=").split(",")) == 2  # Ray's own GPU ids for this rank
    assert len(masters) == 1  # every rank is told rank 0's address and one port

    # getClusters names the cluster's nodes by their Ray node ids too.
    (cluster,) = mcli.get_clusters()
    listed = {node.name for instance in cluster.cluster_instances for node in instance.node_details}
    assert listed == ray_cluster.node_ids()

    described = cli(sdk_env, "describe", "run", run.name)
    assert described.returncode == 0, described.stderr
    assert all(name in described.stdout for name in names if name)


def test_never_fits_is_refused_at_create_time(sdk_env: dict[str, str]) -> None:
    # Three nodes of two GPUs: three GPUs per rank, or four ranks on distinct nodes, can never be placed.
    for compute in ({"gpus": 6, "nodes": 2}, {"gpus": 0, "nodes": 4}, {"gpus": 8, "nodes": 4}):
        with pytest.raises(InstanceTypeUnavailable, match="can never fit"):
            mcli.create_run(RunConfig(name="too-big", image="local/x", command="true", compute=compute))
    assert list(mcli.get_runs(["too-big"])) == []


def test_queued_until_capacity_frees_then_placed(sdk_env: dict[str, str]) -> None:
    everything = {"gpus": 3 * GPUS_PER_NODE, "nodes": 3}
    mcli.create_run(
        RunConfig(name="hold-all", image="local/x", command="echo holding; sleep 120", compute=everything)
    )
    wait_for("hold-all", {RunStatus.RUNNING})
    mcli.create_run(
        RunConfig(name="waits", image="local/x", command="echo placed", compute={"gpus": 2, "nodes": 1})
    )
    time.sleep(0.5)
    assert mcli.get_run("waits").status == RunStatus.QUEUED
    mcli.stop_run("hold-all")
    done = wait_for("waits", {RunStatus.COMPLETED, RunStatus.FAILED})
    assert done.status == RunStatus.COMPLETED, done.reason
    assert mcli.get_run_logs("waits") == "placed\n"
    assert mcli.get_run("hold-all").status == RunStatus.STOPPED


def test_stop_kills_a_command_that_ignores_sigterm(sdk_env: dict[str, str], ray_server: RayServer) -> None:
    marker = f"sleep 6{os.getpid() % 1000}.5"
    command = f'trap "" TERM; echo armed; {marker} & {marker}; wait'
    run = mcli.create_run(
        RunConfig(name="stubborn", image="local/x", command=command, compute={"gpus": 4, "nodes": 2})
    )
    wait_for(run.name, {RunStatus.RUNNING})
    for rank in (0, 1):
        wait_for_log(run.name, rank, "armed")
    assert len(processes_matching(marker)) >= 4  # two sleeps (one a grandchild in the background) per rank

    stopped = cli(sdk_env, "stop", "run", run.name, "--yes")
    assert stopped.returncode == 0, stopped.stderr
    done = wait_for(run.name, {RunStatus.STOPPED, RunStatus.FAILED, RunStatus.COMPLETED})
    assert done.status == RunStatus.STOPPED
    # SIGKILL follows the grace; the run is STOPPED only once actors and placement are removed. Nothing may be
    # left 2 s after the grace.
    assert wait_until_gone(marker, ray_server.stop_grace_seconds + 2) == []
    assert not _node_log_dir_exists(mcli.get_run(run.name).run_uid)
    assert {node.status for node in done.nodes} == {"STOPPED"}


def test_a_lost_node_fails_the_run_as_a_system_failure(
    ray_cluster: RayCluster, sdk_env: dict[str, str]
) -> None:
    extra = ray_cluster.add_worker()
    marker = f"sleep 7{os.getpid() % 1000}.5"
    compute = {"gpus": 4 * GPUS_PER_NODE, "nodes": 4}  # one rank on every node, the new one too
    run = mcli.create_run(
        RunConfig(name="loses-node", image="local/x", command=f"echo up; {marker}", compute=compute)
    )
    wait_for(run.name, {RunStatus.RUNNING})
    for rank in range(4):
        wait_for_log(run.name, rank, "up")
    ray_cluster.cluster.remove_node(extra)

    done = wait_for(run.name, {RunStatus.FAILED, RunStatus.STOPPED, RunStatus.COMPLETED}, seconds=90)
    assert done.status == RunStatus.FAILED
    assert done.reason == f"Ray node {extra.node_id} was lost"
    by_name = {node.name: node for node in done.nodes}
    assert by_name[extra.node_id].status == "FAILED"
    assert {node.status for name, node in by_name.items() if name != extra.node_id} == {"STOPPED"}
    # The lost node's rank had no actor left to stop it: its guard killed it.
    assert wait_until_gone(marker, 10) == []


def test_a_cluster_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"  # bound, not listening: nothing answers there
        serve = [*MCLI, "local", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")]
        proc = subprocess.run(
            [*serve, "--executor", "ray", "--ray-address", address],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"mcli: error: no Ray cluster answers at {address}")
    assert "ray start --head" in proc.stderr


def test_a_failed_execution_is_resumed_on_ray_with_its_own_placement_and_log(sdk_env: dict[str, str]) -> None:
    # Rank 1's first execution fails (a command failure); max_retries=1 resumes the run as execution 1, where
    # both ranks succeed. (Rank 0's first log is cut short by the stop the failure causes, so it is not compared.)
    command = 'if [ "$NODE_RANK" = 1 ] && [ ! -e failed-once ]; then touch failed-once; echo first; exit 3; fi; echo second'
    config = RunConfig(
        name="retried",
        image="local/x",
        command=command,
        compute={"gpus": 2, "nodes": 2},
        scheduling={"max_retries": 1},
    )
    run = mcli.create_run(config)
    done = wait_for(run.name, {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED})
    assert done.status == RunStatus.COMPLETED, done.reason
    assert mcli.get_run_logs(run.name, rank=1, resumption=0) == "first\n"
    assert mcli.get_run_logs(run.name, rank=1, resumption=1) == "second\n"
    assert mcli.get_run_logs(run.name, rank=0, resumption=1) == "second\n"
    assert not _node_log_dir_exists(done.run_uid)  # both executions' node logs were cleared


def test_a_queued_run_starts_when_a_node_joins(ray_cluster: RayCluster, sdk_env: dict[str, str]) -> None:
    one_node = {"gpus": GPUS_PER_NODE, "nodes": 1}
    mcli.create_run(RunConfig(name="holds-one", image="local/x", command="sleep 120", compute=one_node))
    wait_for("holds-one", {RunStatus.RUNNING})
    three_nodes = {"gpus": 3 * GPUS_PER_NODE, "nodes": 3}
    mcli.create_run(
        RunConfig(name="needs-three", image="local/x", command="echo spread", compute=three_nodes)
    )
    time.sleep(0.5)
    assert mcli.get_run("needs-three").status == RunStatus.QUEUED  # two of the three nodes are free
    extra = ray_cluster.add_worker()
    try:
        done = wait_for("needs-three", {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED})
        assert done.status == RunStatus.COMPLETED, done.reason
        assert extra.node_id in {node.name for node in done.nodes}
    finally:
        mcli.stop_run("holds-one")
        wait_for("holds-one", {RunStatus.STOPPED})
        ray_cluster.cluster.remove_node(extra)
