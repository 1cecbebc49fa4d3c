"""Automatic resumptions (`maxRetries`, `retryOnSystemFailure`), time limits (`maxDuration`) and `startRuns`."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from .conftest import KEY
from .helpers import RESTART_KEY, RUN_FIELDS, UPDATE, Api, GqlError, ServerProcess, WsClient, post

# Counts its executions in the run's work dir (kept across resumptions); fails until the third.
FAILS_TWICE = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; [ "$n" -ge 3 ]'
START = f"""mutation StartRuns($getRunsData: GetRunsInput!) {{
  startRuns(getRunsData: $getRunsData) {{ {RUN_FIELDS} }} }}"""


async def logs_of(api: Api, name: str, **inp: Any) -> bytes:
    client = WsClient(api.endpoint)
    await client.connect(KEY)
    try:
        return (await client.logs(name=name, **inp))[0]
    finally:
        await client.close()


async def start(api: Api, names: list[str]) -> list[dict[str, Any]]:
    data = await post(api.endpoint, KEY, START, {"getRunsData": {"filters": {"name": {"in": names}}}})
    runs: list[dict[str, Any]] = data["startRuns"]
    return runs


async def update(api: Api, name: str, **changes: Any) -> dict[str, Any]:
    variables = {"getRunsData": {"filters": {"name": {"in": [name]}}}, "updateRunData": changes}
    run: dict[str, Any] = (await post(api.endpoint, KEY, UPDATE, variables))["updateRun"][0]
    return run


async def test_fails_twice_then_succeeds_with_three_resumptions_and_their_own_logs(api: Api) -> None:
    await api.create(name="flaky", command=FAILS_TWICE, scheduling={"maxRetries": 3})
    run = await api.wait("flaky", timeout=60)
    assert run["status"] == "COMPLETED" and run["reason"] is None
    resumptions = run["resumptions"]
    assert [r["executionIndex"] for r in resumptions] == [0, 1, 2]
    assert [r["status"] for r in resumptions] == ["FAILED", "FAILED", "COMPLETED"]
    assert all(r["startTime"] and r["endTime"] for r in resumptions)
    assert "exited with code 1" in resumptions[0]["reason"]
    # Each resumption keeps its own log.
    seen = [await logs_of(api, "flaky", attemptIndex=i) for i in range(3)]
    assert seen == [b"attempt 1\n", b"attempt 2\n", b"attempt 3\n"]
    assert await logs_of(api, "flaky") == seen[2]  # no index: the latest resumption
    details = run["details"]
    assert details["lastExecutionId"].endswith("-2")
    requeued = [e for e in details["formattedRunEvents"] if e["eventType"] == "REQUEUED"]
    assert [e["resumptionIndex"] for e in requeued] == [1, 2]
    failed = [e for e in details["formattedRunEvents"] if e["eventType"] == "FAILED"]
    assert [e["resumptionIndex"] for e in failed] == [0, 1]
    assert {entry["executionIndex"] for entry in details["lifecycle"]} == {0, 1, 2}
    assert [n["status"] for n in details["nodes"]] == ["COMPLETED"]


async def test_always_failing_run_ends_failed_after_retries_plus_one(api: Api) -> None:
    await api.create(name="doomed", command="echo no; exit 4", scheduling={"maxRetries": 2})
    run = await api.wait("doomed", timeout=60)
    assert run["status"] == "FAILED"
    assert [r["status"] for r in run["resumptions"]] == ["FAILED"] * 3
    assert run["reason"] == run["resumptions"][-1]["reason"] == "Node rank 0 exited with code 4"
    assert run["completedAt"] is not None
    # Without retries, one execution only.
    await api.create(name="once", command="exit 4")
    assert len((await api.wait("once"))["resumptions"]) == 1


async def test_watch_sees_the_run_resumed_not_ended(api: Api) -> None:
    client = WsClient(api.endpoint)
    await client.connect(KEY)
    await api.create(name="watched", command="sleep 0.3; exit 1", scheduling={"maxRetries": 1})
    watch = "subscription S($watchRunStatusInput: WatchRunStatusInput!) { watchRunStatus(watchRunStatusInput: $watchRunStatusInput) }"
    try:
        statuses = [m["watchRunStatus"] for m in await client.collect(watch, {"watchRunStatusInput": {"name": "watched"}})]
    finally:
        await client.close()
    assert statuses[-1] == "FAILED" and statuses.count("RUNNING") == 2
    assert "FAILED" not in statuses[:-1]  # the run never looked ended between its two executions
    assert statuses[statuses.index("RUNNING") + 1] == "PENDING"


async def test_user_stop_is_never_retried(api: Api) -> None:
    await api.create(name="stopme", command="sleep 60", scheduling={"maxRetries": 3, "retryOnSystemFailure": True})
    await api.wait("stopme", {"RUNNING"})
    await api.stop(["stopme"], reason="enough")
    run = await api.wait("stopme")
    assert run["status"] == "STOPPED" and run["reason"] == "enough" and len(run["resumptions"]) == 1


async def test_max_duration_stops_a_sleeping_run_with_the_reason(api: Api) -> None:
    started = time.monotonic()
    await api.create(name="capped", command="sleep 60", scheduling={"maxDuration": 2 / 3600, "maxRetries": 2})
    run = await api.wait("capped", timeout=30)
    assert run["status"] == "STOPPED" and time.monotonic() - started < 20
    assert "maximum duration" in run["reason"] and "(2 s)" in run["reason"]
    assert len(run["resumptions"]) == 1  # reaching the limit is a stop, never retried


async def test_update_max_duration_moves_the_deadline(api: Api) -> None:
    await api.create(name="extended", command="sleep 60", scheduling={"maxDuration": 2 / 3600})
    await api.create(name="shortened", command="sleep 60", scheduling={"maxDuration": 1.0})
    await api.wait("extended", {"RUNNING"})
    await api.wait("shortened", {"RUNNING"})
    assert (await update(api, "extended", maxDurationSeconds=3600))["maxDurationSeconds"] == 3600
    await update(api, "shortened", maxDurationSeconds=2)
    shortened = await api.wait("shortened", timeout=30)
    assert shortened["status"] == "STOPPED" and "(2 s)" in shortened["reason"]
    await asyncio.sleep(1.5)  # well past the old 2 s deadline of "extended"
    assert (await api.get("extended"))["status"] == "RUNNING"
    await api.stop(["extended"])


async def test_start_runs_restarts_stopped_and_failed_runs_as_a_new_resumption(api: Api) -> None:
    await api.create(name="again", command="echo run-$RUN_NAME; sleep 60")
    await api.wait("again", {"RUNNING"})
    await api.stop(["again"])
    await api.wait("again")
    (restarted,) = await start(api, ["again"])
    assert restarted["status"] == "PENDING" and restarted["completedAt"] is None
    assert [r["executionIndex"] for r in restarted["resumptions"]] == [0, 1]
    assert [r["status"] for r in restarted["resumptions"]] == ["STOPPED", "PENDING"]
    running = await api.wait("again", {"RUNNING"})
    assert running["resumptions"][-1]["startTime"] is not None
    assert (await logs_of(api, "again", attemptIndex=0)) == b"run-again\n"
    await api.stop(["again"])
    assert (await api.wait("again"))["status"] == "STOPPED"

    await api.create(name="done-once", command="true")
    await api.wait("done-once")
    with pytest.raises(GqlError, match="only stopped or failed runs can be started") as refused:
        await start(api, ["done-once"])
    assert refused.value.code == 400
    with pytest.raises(GqlError) as empty:
        await post(api.endpoint, KEY, START, {"getRunsData": {"filters": {}}})
    assert empty.value.code == 400
    with pytest.raises(GqlError) as missing:
        await start(api, ["nobody-here"])
    assert missing.value.code == 404


async def test_restart_resets_the_retries(api: Api) -> None:
    await api.create(name="retry-reset", command="exit 2", scheduling={"maxRetries": 1})
    assert len((await api.wait("retry-reset", timeout=60))["resumptions"]) == 2
    await start(api, ["retry-reset"])
    await asyncio.sleep(0.2)
    run = await api.wait("retry-reset", timeout=60)
    assert run["status"] == "FAILED" and len(run["resumptions"]) == 4  # 2, then a restart with its own retry


async def test_server_sigkill_and_restart_is_a_system_failure(server_process: ServerProcess) -> None:
    """A run the server lost is resumed only under `retryOnSystemFailure`; its own failures are a separate matter."""
    server_process.start()
    api = Api(server_process.endpoint, RESTART_KEY)
    # Runs `sleep` only the first time, so the resumed execution ends by itself.
    once = "if [ -e started ]; then echo second; else touch started; echo first; sleep 60; fi"
    await api.create(name="guarded", command=once, scheduling={"retryOnSystemFailure": True})
    await api.create(name="unguarded", command=once, scheduling={"maxRetries": 0})
    await api.wait("guarded", {"RUNNING"})
    await api.wait("unguarded", {"RUNNING"})
    await asyncio.sleep(0.3)  # the first line on disk
    server_process.stop(signal.SIGKILL)

    server_process.start()
    guarded = await api.wait("guarded", timeout=30)
    assert guarded["status"] == "COMPLETED"
    first, second = guarded["resumptions"]
    assert first["status"] == "FAILED" and "restarted" in first["reason"]
    assert second["status"] == "COMPLETED"
    events = [(e["eventType"], e["resumptionIndex"]) for e in guarded["details"]["formattedRunEvents"]]
    assert ("REQUEUED", 1) in events
    unguarded = await api.wait("unguarded", timeout=30)
    assert unguarded["status"] == "FAILED" and "restarted" in unguarded["reason"]
    assert len(unguarded["resumptions"]) == 1
    client = WsClient(server_process.endpoint)
    await client.connect(RESTART_KEY)
    try:
        assert (await client.logs(name="guarded", attemptIndex=0))[0] == b"first\n"
        assert (await client.logs(name="guarded"))[0] == b"second\n"
    finally:
        await client.close()
    server_process.stop(signal.SIGTERM)


async def test_a_limit_under_a_second_is_refused(api: Api) -> None:
    with pytest.raises(GqlError, match="maxDuration must be a number of hours from 1/3600") as refused:
        await api.create(name="too-short", command="true", scheduling={"maxDuration": 0.0001})
    assert refused.value.code == 400


INTERACTIVE = f"""mutation CreateInteractiveRun($createRunData: CreateInteractiveRunInput!) {{
  createInteractiveRun(createRunData: $createRunData) {{ {RUN_FIELDS} }} }}"""


async def test_interactive_run_sleeps_for_its_seconds_whatever_its_command(api: Api) -> None:
    started = time.monotonic()
    variables = {"createRunData": {"runInput": {"runName": "poke", "command": "exit 9"}, "seconds": 2}}
    (run,) = (await post(api.endpoint, KEY, INTERACTIVE, variables))["createInteractiveRun"]
    assert run["runType"] == "INTERACTIVE" and run["name"] == "poke"
    await api.wait("poke", {"RUNNING"})
    done = await api.wait("poke", timeout=30)
    assert done["status"] == "COMPLETED" and time.monotonic() - started >= 2
    assert done["details"]["originalRunInput"]["command"] == "sleep 2"
    with pytest.raises(GqlError, match="seconds must be from 1") as refused:
        await post(api.endpoint, KEY, INTERACTIVE, {"createRunData": {"runInput": {}, "seconds": 0}})
    assert refused.value.code == 400


async def test_a_restart_gets_the_time_limit_afresh(api: Api) -> None:
    await api.create(name="capped-twice", command="sleep 60", scheduling={"maxDuration": 2 / 3600})
    assert (await api.wait("capped-twice", timeout=30))["status"] == "STOPPED"
    await start(api, ["capped-twice"])
    await api.wait("capped-twice", {"RUNNING"})
    await asyncio.sleep(1)  # the first execution used the whole limit; the restarted one still runs
    assert (await api.get("capped-twice"))["status"] == "RUNNING"
    done = await api.wait("capped-twice", timeout=30)
    assert done["status"] == "STOPPED" and "maximum duration" in done["reason"]
    second = done["resumptions"][1]
    assert second["status"] == "STOPPED"
