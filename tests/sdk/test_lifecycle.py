"""The 0.8.3 lifecycle surface of the SDK against the local server: clusters, update_run, Run methods, filters."""

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mcli
import mcli.aio
from mcli import RunConfig, RunStatus
from mcli.testing import MapiServer, MapiUser, mapi_environment

from .conftest import API_KEY


def config(command: str, **extra: object) -> RunConfig:
    return RunConfig(image="python:3.11", command=command, **extra)  # type: ignore[arg-type]


@pytest.fixture
def own_server(mapi_server_factory: Callable[..., MapiServer], tmp_path: Path) -> Iterator[MapiServer]:
    """A server of its own (1 node x 4 GPUs), so that capacity figures are not shared with other tests."""
    local = mapi_server_factory(api_key=API_KEY, nodes=1, gpus_per_node=4, gpu_type="h100")
    with mapi_environment(local, config_dir=tmp_path / "own-config"):
        yield local


def test_clusters_show_capacity_and_what_is_in_use(own_server: MapiServer) -> None:
    (cluster,) = mcli.get_clusters()
    assert cluster.name == "local" and cluster.utilization is None
    gpu = next(i for i in cluster.cluster_instances if i.gpu_type == "h100")
    assert (gpu.gpus, gpu.nodes, [n.name for n in gpu.node_details]) == (4, 1, ["local-node-0"])
    assert cluster.submission_types == ["TRAINING"]

    holder = mcli.create_run(config("sleep 60", name="holds-three", compute={"gpus": 3}))
    waiter = mcli.create_run(config("sleep 60", name="waits-for-two", compute={"gpus": 2}))
    try:
        mcli.wait_for_run_status(holder, RunStatus.RUNNING, timeout=30)
        mcli.wait_for_run_status(waiter, RunStatus.QUEUED, timeout=30)
        cluster = mcli.get_cluster("local")
        assert cluster.utilization is not None
        util = next(u for u in cluster.utilization.cluster_instance_utils if u.instance.gpu_type == "h100")
        assert (util.gpus_used, util.gpus_available, util.gpus_total) == (3, 1, 4)
        (active,) = cluster.utilization.active_runs_by_user
        assert (active.name, active.gpu_num, active.user) == ("holds-three", 3, "local@mcli.local")
        assert active.start_time is not None
        (queued,) = cluster.utilization.queued_runs_by_user
        assert queued.name == "waits-for-two" and "capacity" in (queued.reason or "")
    finally:
        mcli.stop_runs([holder, waiter])
    assert mcli.get_clusters(["elsewhere"]) == []
    with pytest.raises(mcli.NotFoundError, match="Cluster elsewhere not found"):
        mcli.get_cluster("elsewhere")


def test_update_run_changes_scheduling_settings() -> None:
    run = mcli.create_run(config("true", name="sdk-update", scheduling={"max_retries": 1}))
    updated = mcli.update_run(run, max_retries=4, priority="low", preemptible=True, max_duration=0.5)
    assert (updated.max_retries, updated.priority, updated.preemptible) == (4, "low", True)
    assert updated.max_duration_seconds == 1800
    fetched = mcli.get_run("sdk-update")
    assert (fetched.max_retries, fetched.max_duration_seconds) == (4, 1800)
    future = mcli.update_run("sdk-update", retry_on_system_failure=True, future=True)
    assert isinstance(future, concurrent.futures.Future)
    assert future.result(timeout=10).retry_on_system_failure is True
    assert asyncio.run(mcli.aio.update_run("sdk-update", max_retries=0)).max_retries == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "nothing to update"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_duration": 0}, "max_duration must be a positive number of hours"),
        ({"preemptible": "yes"}, "preemptible must be True, False or None"),
        ({"priority": ""}, "priority"),
    ],
)
def test_update_run_refuses_bad_settings_before_any_request(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mcli.update_run("never-sent", **settings)  # type: ignore[arg-type]


def test_update_run_of_a_missing_run_is_not_found() -> None:
    with pytest.raises(mcli.NotFoundError):
        mcli.update_run("no-such-run-here", max_retries=1)


def test_run_methods_act_on_the_run() -> None:
    run = mcli.create_run(config("sleep 60", name="sdk-methods", metadata={"a": 1}, compute={"gpus": 0}))
    assert run.refresh().name == "sdk-methods"
    assert run.update(max_retries=2).max_retries == 2
    assert run.update_metadata({"b": 2}).metadata == {"a": 1, "b": 2}
    stopped = run.stop(reason="enough")
    mcli.wait_for_run_status(stopped, RunStatus.STOPPED, timeout=30)
    refreshed = run.refresh(future=True).result(timeout=10)
    assert refreshed.status == RunStatus.STOPPED and refreshed is not run
    assert run.status != RunStatus.STOPPED  # a Run is a snapshot; methods return new ones

    clone = run.clone(command="echo cloned", max_retries=3, name="sdk-methods-clone")
    assert clone.name == "sdk-methods-clone" and clone.max_retries == 3
    assert clone.submitted_config is not None and clone.submitted_config.command == "echo cloned"
    assert clone.submitted_config.metadata == {"a": 1}  # the submitted config, not later metadata changes
    unnamed = mcli.get_run("sdk-methods").clone()
    assert unnamed.name != "sdk-methods" and unnamed.submitted_config is not None
    with pytest.raises(ValueError, match="unknown settings colour"):
        run.clone(colour="red")

    assert run.delete().is_deleted
    assert mcli.get_runs(["sdk-methods"]) == []
    assert "sdk-methods" in [r.name for r in mcli.get_runs(include_deleted=True)]


def test_get_runs_by_end_time_and_owner(configured: MapiUser) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    run = mcli.create_run(config("true", name="sdk-ended"))
    mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=30)
    assert "sdk-ended" in [r.name for r in mcli.get_runs(ended_after=started)]
    assert "sdk-ended" not in [r.name for r in mcli.get_runs(ended_before=started)]
    assert "sdk-ended" in [r.name for r in mcli.get_runs(user_emails=[configured.email], ended_after=started)]
    with pytest.raises(mcli.MAPIException, match="own runs"):
        mcli.get_runs(user_emails=["someone.else@example.com"])
    with pytest.raises(ValueError, match=r"ended_after .* must be earlier than ended_before"):
        mcli.get_runs(ended_before=started, ended_after=started)


FAILS_TWICE = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; [ "$n" -ge 3 ]'


def test_retried_run_has_resumptions_with_their_own_logs_and_follow_reads_each() -> None:
    # Each attempt lasts a second, so the follower is attached before the first one fails.
    command = f"{FAILS_TWICE}; status=$?; sleep 1; exit $status"
    run = mcli.create_run(config(command, name="sdk-flaky", scheduling={"max_retries": 3}))
    followed = list(mcli.follow_run_logs(run))
    assert followed == ["attempt 1\n", "attempt 2\n", "attempt 3\n"]
    done = mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=60)
    assert [(r.index, r.status) for r in done.resumptions] == [
        (0, RunStatus.FAILED),
        (1, RunStatus.FAILED),
        (2, RunStatus.COMPLETED),
    ]
    assert [mcli.get_run_logs(run, resumption=i) for i in range(3)] == followed
    assert mcli.get_run_logs(run) == "attempt 3\n"  # the latest resumption
    assert list(mcli.follow_run_logs(run, resumption=1)) == ["attempt 2\n"]
    assert [e.event_type for e in done.events].count("REQUEUED") == 2


def test_start_run_restarts_a_stopped_run_as_a_new_resumption() -> None:
    run = mcli.create_run(config("echo go; sleep 60", name="sdk-restart", scheduling={"max_duration": 1}))
    mcli.wait_for_run_status(run, RunStatus.RUNNING, timeout=30)
    mcli.stop_run(run)
    mcli.wait_for_run_status(run, RunStatus.STOPPED, timeout=30)
    restarted = mcli.start_run(run)
    assert restarted.status == RunStatus.PENDING and [r.index for r in restarted.resumptions] == [0, 1]
    running = mcli.wait_for_run_status(run, RunStatus.RUNNING, timeout=30)
    assert running.resumptions[-1].status == RunStatus.RUNNING
    assert mcli.start_runs([]) == []
    with pytest.raises(mcli.BadRequestError, match="only stopped or failed runs can be started"):
        mcli.start_runs(["sdk-restart"], future=True).result(timeout=10)
    with pytest.raises(mcli.NotFoundError):
        asyncio.run(mcli.aio.start_run("no-such-run-to-start"))
    mcli.stop_run(run)


def test_max_duration_stops_the_run_and_update_moves_the_deadline() -> None:
    capped = mcli.create_run(config("sleep 60", name="sdk-capped", scheduling={"max_duration": 2 / 3600}))
    kept = mcli.create_run(config("sleep 60", name="sdk-kept", scheduling={"max_duration": 3 / 3600}))
    mcli.wait_for_run_status(kept, RunStatus.RUNNING, timeout=30)
    mcli.update_run(kept, max_duration=1)
    stopped = mcli.wait_for_run_status(capped, RunStatus.STOPPED, timeout=30)
    assert stopped.reason is not None and "maximum duration" in stopped.reason
    time.sleep(1.5)  # past the 3 s that `kept` started with
    assert mcli.get_run(kept).status == RunStatus.RUNNING
    kept.stop()


def test_create_interactive_run() -> None:
    run = mcli.create_interactive_run(config("ignored", name="sdk-interactive"), seconds=60)
    assert run.run_type.value == "INTERACTIVE"
    running = mcli.wait_for_run_status(run, RunStatus.RUNNING, timeout=30)
    assert running.submitted_config is not None and running.submitted_config.command == "sleep 60"
    run.stop()
    with pytest.raises(ValueError, match="seconds must be a whole number"):
        mcli.create_interactive_run(config("x"), seconds=0)
    with pytest.raises(mcli.RunConfigException):
        mcli.create_interactive_run(RunConfig(command="x"))  # no image


def test_watch_ends_with_the_whole_final_run() -> None:
    run = mcli.create_run(config("exit 5", name="sdk-watch-retry", scheduling={"max_retries": 1}))
    updates = list(mcli.watch_run_status(run))
    final = updates[-1]
    assert final.status == RunStatus.FAILED and final.reason == "Node rank 0 exited with code 5"
    assert [r.status for r in final.resumptions] == [RunStatus.FAILED, RunStatus.FAILED]
    assert len({id(update) for update in updates}) == len(updates)  # each a new object


def test_watch_takes_the_official_timeout_and_future() -> None:
    run = mcli.create_run(config("sleep 5; exit 1", name="sdk-watch-timeout"))
    statuses = []
    with pytest.raises(mcli.CallTimeoutError, match=r"watch_run_status\('sdk-watch-timeout'\) saw no status change within 2 s"):
        for update in mcli.watch_run_status(run, timeout=2):  # PENDING/RUNNING come at once, then 5 s of nothing
            statuses.append(update.status)
    assert statuses and statuses[-1] in (RunStatus.PENDING, RunStatus.STARTING, RunStatus.RUNNING)
    futures = list(mcli.watch_run_status(run, future=True))
    assert all(isinstance(future, concurrent.futures.Future) for future in futures)
    assert futures[-1].result().status == RunStatus.FAILED and futures[-1].result().reason
