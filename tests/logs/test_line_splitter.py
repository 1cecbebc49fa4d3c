"""Exact lines from arbitrary chunking: no character lost or repeated, whatever the byte boundaries."""

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from mcli.core.errors import APIConnectionError, AuthenticationError
from mcli.core.retry import RetryPolicy
from mcli.logs import LineSplitter, LogLine, LogStream

TEXT = "héllo ✓ wörld 🚀\nsecond ✓ line\n\nno newline at the end ✓"


def split_all(data: bytes, cuts: list[int]) -> list[str]:
    splitter = LineSplitter()
    lines: list[str] = []
    previous = 0
    for cut in [*cuts, len(data)]:
        lines += splitter.feed(data[previous:cut])
        previous = cut
    return lines + splitter.finish()


@pytest.mark.parametrize("pieces", [1, 2, 3, 4])
def test_multibyte_characters_split_over_chunks(pieces: int) -> None:
    data = TEXT.encode()
    start = data.index("🚀".encode())  # four bytes: split it into `pieces` chunks
    cuts = [start + i for i in range(1, pieces)]
    assert "".join(split_all(data, cuts)) == TEXT


def test_every_single_byte_boundary() -> None:
    data = TEXT.encode()
    assert split_all(data, list(range(1, len(data)))) == TEXT.splitlines(keepends=True)


def test_only_newline_ends_a_line() -> None:
    assert split_all(b"a\rb\x0bc\n", []) == ["a\rb\x0bc\n"]


def test_invalid_bytes_become_replacement_characters() -> None:
    assert split_all(b"ok\xff\n", []) == ["ok\ufffd\n"]


def test_log_line_parses_timestamps() -> None:
    line = LogLine.from_line("2026-11-28T09:47:47.123456Z hello world\n")
    assert line.timestamp == datetime(2026, 11, 28, 9, 47, 47, 123456, tzinfo=UTC)
    assert line.text == "hello world\n"
    assert LogLine.from_line("plain line\n") == LogLine(None, "plain line\n")


class ScriptedServer:
    """A fake getRunLogsV2 that drops the connection after some chunks and honours `offset` on resubscribe."""

    def __init__(self, data: bytes, chunk: int, drop_every: int) -> None:
        self.data, self.chunk, self.drop_every = data, chunk, drop_every
        self.offsets: list[int] = []

    async def subscribe(self, variables: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
        offset = variables["offset"]
        self.offsets.append(offset)
        sent = 0
        while offset < len(self.data):
            if sent == self.drop_every:
                raise APIConnectionError(503, "dropped", transient=True)
            end = min(offset + self.chunk, len(self.data))
            yield base64.b64encode(self.data[offset:end]).decode(), end
            offset, sent = end, sent + 1
            await asyncio.sleep(0)


async def test_stream_resumes_from_the_last_consumed_offset() -> None:
    data = ("✓ line\n" * 1000 + "tail").encode()
    server = ScriptedServer(data, chunk=7, drop_every=50)  # 7-byte chunks cut characters too
    stream = LogStream(server.subscribe, {"name": "r", "offset": 0, "tail": 10},
                       reconnect=RetryPolicy(max_attempts=8, initial_delay=0.001, max_delay=0.002))
    lines = [line async for line in stream]
    assert "".join(lines) == data.decode()
    assert stream.reconnects > 10
    assert server.offsets[0] == 0 and all(b > a for a, b in zip(server.offsets, server.offsets[1:], strict=False))


async def test_errors_retrying_cannot_fix_fail_fast() -> None:
    async def denied(variables: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
        raise AuthenticationError(401, "unknown API key")
        yield  # pragma: no cover

    stream = LogStream(denied, {"name": "r", "offset": 0})
    with pytest.raises(AuthenticationError):
        await stream.next_batch()
    assert stream.reconnects == 0


async def test_budget_runs_out_without_progress() -> None:
    calls = 0

    async def down(variables: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
        nonlocal calls
        calls += 1
        raise APIConnectionError(503, "refused", transient=True)
        yield  # pragma: no cover

    stream = LogStream(down, {"name": "r", "offset": 0}, reconnect=RetryPolicy(max_attempts=4, initial_delay=0.001))
    with pytest.raises(APIConnectionError):
        await stream.next_batch()
    assert calls == 4
