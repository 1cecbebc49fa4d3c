"""getRunLogsV2: offsets, tail, ranks, failed rank, timestamps, UTF-8 chunking, follow, big logs, latency."""

from __future__ import annotations

import base64
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable

import pytest

from mcli.local import LocalServer

from .conftest import KEY
from .helpers import LOGS, Api, GqlError, WsClient

PY = sys.executable


@pytest.fixture
async def ws(server: LocalServer) -> AsyncIterator[WsClient]:
    client = WsClient(server.endpoint)
    await client.connect(KEY)
    yield client
    await client.close()


async def test_offset_tail_and_absolute_offsets(api: Api, ws: WsClient) -> None:
    await api.create(name="lines", command="for i in 1 2 3 4 5; do echo line$i; done")
    await api.wait("lines")
    full, offsets = await ws.logs(name="lines", follow=False, offset=0)
    assert full == b"".join(f"line{i}\n".encode() for i in range(1, 6))
    assert offsets[-1] == len(full)
    tail, offsets = await ws.logs(name="lines", follow=False, tail=2, offset=0)
    assert tail == b"line4\nline5\n" and offsets[-1] == len(full)
    rest, _ = await ws.logs(name="lines", follow=False, offset=12, tail=1)  # offset > 0 wins over tail
    assert rest == full[12:]
    assert (await ws.logs(name="lines", follow=False, tail=0))[0] == b""
    assert (await ws.logs(name="lines", follow=False, tail=99))[0] == full


async def test_ranks_and_failed(api: Api, ws: WsClient) -> None:
    await api.create(
        name="ranks", command='echo "rank $NODE_RANK"; [ "$NODE_RANK" != 1 ] || exit 5', compute={"nodes": 2}
    )
    await api.wait("ranks")
    for rank in range(2):
        assert (await ws.logs(name="ranks", nodeRank=rank))[0] == f"rank {rank}\n".encode()
    assert (await ws.logs(name="ranks"))[0] == b"rank 0\n"
    assert (await ws.logs(name="ranks", failed=True))[0] == b"rank 1\n"
    for bad in ({"nodeRank": 2}, {"attemptIndex": 1}, {"offset": -1}):
        with pytest.raises(GqlError) as err:
            await ws.logs(name="ranks", **bad)
        assert err.value.errors[0]["extensions"]["code"] == 400
    with pytest.raises(GqlError) as err:
        await ws.logs(name="no-such-run")
    assert err.value.errors[0]["extensions"]["code"] == 404


async def test_timestamps(api: Api, ws: WsClient) -> None:
    await api.create(name="stamped", command="echo a; sleep 0.2; printf 'b\\nc'")
    await api.wait("stamped")
    _, raw_offsets = await ws.logs(name="stamped")
    text, offsets = await ws.logs(name="stamped", timestamps=True)
    assert offsets == raw_offsets  # endOffset still counts raw bytes
    lines = text.decode().split("\n")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z "
    assert [re.sub(stamp, "", line) for line in lines] == ["a", "b", "c"]
    assert all(re.match(stamp, line) for line in lines)
    assert lines[0][:26] < lines[1][:26]
    # Starting at a line start gets a prefix; starting mid-line gets none until the next line.
    text, _ = await ws.logs(name="stamped", offset=2, timestamps=True)
    assert re.fullmatch(f"{stamp}b\n{stamp}c", text.decode())
    text, _ = await ws.logs(name="stamped", offset=3, timestamps=True)
    assert re.fullmatch(f"\n{stamp}c", text.decode())


async def test_not_started_and_follow_waits_for_start(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(max_concurrent_runs=1)
    api = Api(server.endpoint, KEY)
    await api.create(name="hold", command="sleep 0.5")
    await api.create(name="later", command="echo started")
    client = WsClient(server.endpoint, "graphql-ws")
    await client.connect(KEY)
    try:
        with pytest.raises(GqlError) as err:
            await client.logs(name="later", follow=False)
        assert "has not started yet" in err.value.errors[0]["message"]
        text, _ = await client.logs(name="later", follow=True)
        assert text == b"started\n"
    finally:
        await client.close()


async def test_utf8_chunks_are_cut_on_character_boundaries(api: Api, ws: WsClient) -> None:
    # 3-byte characters, 1.2 MB in total: 512 KiB chunk limits fall inside characters.
    await api.create(name="utf8", command=f"""{PY} -c "import sys; sys.stdout.write('x' + '✓' * 400000)" """)
    await api.wait("utf8")
    op = ws.stream(LOGS, {"getRunLogsInput": {"name": "utf8"}})
    pieces = []
    async for data in op:
        raw = base64.b64decode(data["getRunLogsV2"]["chunk"])
        assert len(raw) <= 512 * 1024
        pieces.append(raw.decode("utf-8"))  # each chunk decodes on its own
    assert len(pieces) >= 3
    assert "".join(pieces) == "x" + "✓" * 400000


async def test_follow_live_every_line_once_in_order(api: Api, ws: WsClient) -> None:
    script = "import time\nfor i in range(300):\n    print(f'line {i}', flush=True)\n    time.sleep(0.002)\n"
    await api.create(name="live", command=f'{PY} -c "{script}"')
    text, offsets = await ws.logs(name="live", follow=True)
    assert text.decode().splitlines() == [f"line {i}" for i in range(300)]
    assert offsets == sorted(offsets)
    assert (await api.get("live"))["status"] == "COMPLETED"
    # Resuming from an offset continues exactly where the stream stopped.
    again, _ = await ws.logs(name="live", follow=True, offset=offsets[len(offsets) // 2])
    assert text.endswith(again)


async def test_follow_completes_when_run_is_stopped(api: Api, ws: WsClient) -> None:
    await api.create(name="endless", command="echo begin; sleep 60")
    await api.wait("endless", {"RUNNING"})
    import asyncio

    async def stop_soon() -> None:
        await asyncio.sleep(0.3)
        await api.stop(["endless"])

    stopper = asyncio.create_task(stop_soon())
    text, _ = await ws.logs(name="endless", follow=True)
    await stopper
    assert text == b"begin\n"


async def test_big_log(api: Api, ws: WsClient) -> None:
    await api.create(name="big", command="seq 1 200000")
    await api.wait("big")
    start = time.perf_counter()
    text, offsets = await ws.logs(name="big", follow=False)
    elapsed = time.perf_counter() - start
    assert text == b"".join(f"{i}\n".encode() for i in range(1, 200001))
    tail, _ = await ws.logs(name="big", tail=3)
    assert tail == b"199998\n199999\n200000\n"
    stamped_start = time.perf_counter()
    stamped, _ = await ws.logs(name="big", timestamps=True)
    stamped_elapsed = time.perf_counter() - stamped_start
    assert stamped.count(b"\n") == 200000
    print(
        f"\n200k-line log ({len(text)} bytes, {len(offsets)} messages): read {elapsed * 1000:.0f} ms, "
        f"with timestamps {stamped_elapsed * 1000:.0f} ms"
    )


async def test_live_latency(api: Api, ws: WsClient) -> None:
    """Time from a line written by the process to the line on the websocket (printed, not asserted)."""
    script = (
        "import time\nfor i in range(200):\n    print(repr(time.time()), flush=True)\n    time.sleep(0.005)\n"
    )
    await api.create(name="latency", command=f'{PY} -c "{script}"')
    latencies = []
    buffer = b""
    async for data in ws.stream(LOGS, {"getRunLogsInput": {"name": "latency", "follow": True}}):
        now = time.time()
        buffer += base64.b64decode(data["getRunLogsV2"]["chunk"])
        *lines, rest = buffer.split(b"\n")
        buffer = rest
        latencies += [(now - float(line)) * 1000 for line in lines]
    assert len(latencies) == 200
    print(
        f"\nlive log latency: p50 {statistics.median(latencies):.2f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95)]:.2f} ms"
    )
