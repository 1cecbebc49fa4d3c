"""Load: 100 concurrent followers of one run (each gets every line exactly once, in order) and 50 concurrent
`create_run(..., future=True)` (all created, names unique) against one server subprocess whose peak RSS is
sampled with psutil and reported."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable

import mcli
import mcli.aio

from .conftest import KEY, ServerProcess, report

LINES = 400
FOLLOWERS = 100
CREATES = 50
# Starts after a pause (followers attach to a run that has not printed yet, or is printing), then writes in bursts.
CHATTY = (
    f'sleep 0.5; i=0; while [ $i -lt {LINES} ]; do echo "line $i of the chatty run"; i=$((i+1)); '
    'if [ $((i % 25)) -eq 0 ]; then sleep 0.05; fi; done'
)
RSS_LIMIT = 400 * 2**20


def test_many_followers_and_concurrent_creates(
    spawn_server: Callable[..., ServerProcess], sdk_env: Callable[[str, str | None], None]
) -> None:
    server = spawn_server()
    sdk_env(server.endpoint, KEY)
    started = time.monotonic()
    chatty = mcli.create_run({"name": "chatty", "image": "local/load:1", "command": CHATTY})
    assert isinstance(chatty, mcli.Run)

    async def followers() -> tuple[list[list[str]], int]:
        streams = await asyncio.gather(
            *(mcli.aio.follow_run_logs("chatty", timeout=30) for _ in range(FOLLOWERS))
        )

        async def drain(stream: object) -> list[str]:
            assert isinstance(stream, mcli.aio.LogStream)
            async with stream:
                return [line async for line in stream]

        async with asyncio.timeout(90):
            results = await asyncio.gather(*(drain(s) for s in streams))
        return results, sum(s.reconnects for s in streams)

    results, reconnects = asyncio.run(followers())
    expected = [f"line {i} of the chatty run\n" for i in range(LINES)]
    bad = [i for i, lines in enumerate(results) if lines != expected]
    assert not bad, f"{len(bad)} followers got a wrong log; first: {results[bad[0]][:5]}... ({len(results[bad[0]])} lines)"
    follow_seconds = time.monotonic() - started

    created_at = time.monotonic()
    futures = [
        mcli.create_run({"name": f"burst-{i:02d}", "image": "local/load:1", "command": "echo hi"}, future=True)
        for i in range(CREATES)
    ]
    runs = [f.result(timeout=60) for f in futures if isinstance(f, concurrent.futures.Future)]
    assert len(runs) == CREATES
    names = [r.name for r in runs]
    assert len(set(names)) == CREATES and set(names) == {f"burst-{i:02d}" for i in range(CREATES)}
    listed = mcli.get_runs()
    assert isinstance(listed, list)
    assert {r.name for r in listed} >= set(names) and len(listed) == CREATES + 1
    create_seconds = time.monotonic() - created_at

    report(
        f"load: {FOLLOWERS} followers x {LINES} lines all exact in {follow_seconds:.1f}s "
        f"({reconnects} reconnects); {CREATES} concurrent create_run(future=True) in {create_seconds:.1f}s, "
        f"names unique; server peak RSS {server.peak_rss / 2**20:.1f} MiB"
    )
    assert 0 < server.peak_rss < RSS_LIMIT
