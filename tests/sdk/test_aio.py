"""The async twin shares the implementation and works inside a running loop."""

import asyncio

import mcli
from mcli import RunConfig, RunStatus, aio


async def test_async_twin_end_to_end() -> None:
    run = await aio.create_run(RunConfig(image="python:3.11", command="printf 'x\\ny'"))
    async with await aio.follow_run_logs(run) as lines:
        assert [line async for line in lines] == ["x\n", "y"]
    done = await aio.wait_for_run_status(run, RunStatus.COMPLETED, timeout=30)
    assert done.status is RunStatus.COMPLETED
    statuses = [update.status async for update in aio.watch_run_status(run)]
    assert statuses[-1] is RunStatus.COMPLETED


async def test_sync_api_inside_a_running_loop() -> None:
    # A notebook calls the sync API while its own loop runs.
    run = mcli.create_run(RunConfig(image="python:3.11", command="true"))
    futures = [mcli.get_run(run, future=True) for _ in range(200)]
    results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))  # type: ignore[arg-type]
    assert {r.name for r in results} == {run.name}
