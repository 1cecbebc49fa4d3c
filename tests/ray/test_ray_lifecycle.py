"""Time limits and system-failure retries live in the run lifecycle, above the executor seam: the same on Ray
(command-failure retries on Ray: test_ray_runs.py)."""

from __future__ import annotations

import time

from ray_helpers import GPUS_PER_NODE, RayCluster, wait_for, wait_for_log

import mcli
from mcli import RunConfig, RunStatus

TERMINAL = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED}


def test_max_duration_stops_a_run_on_ray(sdk_env: dict[str, str]) -> None:
    started = time.monotonic()
    run = mcli.create_run(
        RunConfig(
            name="ray-capped", image="local/x", command="sleep 120", scheduling={"max_duration": 3 / 3600}
        )
    )
    done = wait_for(run.name, TERMINAL, seconds=60)
    assert done.status == RunStatus.STOPPED and time.monotonic() - started < 45
    assert done.reason is not None and "maximum duration" in done.reason and "(3 s)" in done.reason


def test_a_lost_node_is_a_system_failure_that_retry_on_system_failure_resumes(
    ray_cluster: RayCluster, sdk_env: dict[str, str]
) -> None:
    extra = ray_cluster.add_worker()
    # One rank on every node, the new one too; each rank sleeps only in the first execution.
    once = 'if [ -e "started-$NODE_RANK" ]; then echo again; else touch "started-$NODE_RANK"; echo up; sleep 120; fi'
    compute = {"gpus": 4 * GPUS_PER_NODE, "nodes": 4}
    run = mcli.create_run(
        RunConfig(
            name="ray-resumed",
            image="local/x",
            command=once,
            compute=compute,
            scheduling={"retry_on_system_failure": True},
        )
    )
    wait_for(run.name, {RunStatus.RUNNING})
    for rank in range(4):
        wait_for_log(run.name, rank, "up")
    ray_cluster.cluster.remove_node(extra)

    # The lost node fails the first execution; the second waits for four nodes again.
    queued = wait_for(run.name, {RunStatus.QUEUED, RunStatus.PENDING}, seconds=90)
    first = queued.resumptions[0]
    assert first.status == RunStatus.FAILED and first.reason == f"Ray node {extra.node_id} was lost"
    replacement = ray_cluster.add_worker()
    try:
        done = wait_for(run.name, TERMINAL, seconds=90)
        assert done.status == RunStatus.COMPLETED and [r.index for r in done.resumptions] == [0, 1]
        assert mcli.get_run_logs(run, rank=0) == "again\n"
        assert mcli.get_run_logs(run, rank=0, resumption=0) == "up\n"
    finally:
        ray_cluster.cluster.remove_node(replacement)  # the session's cluster goes back to its three nodes
