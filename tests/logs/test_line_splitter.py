"""Exact lines from arbitrary chunking: no character lost or repeated, whatever the byte boundaries."""

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcli.core.errors import APIConnectionError, AuthenticationError, MalformedResponseError
from mcli.core.retry import RetryPolicy
from mcli.logs import LineSplitter, LogLine, LogStream, decode_chunk

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


def test_only_newline_ends_a_line_in_any_chunk_of_a_mixed_log() -> None:
    # Plain chunks and chunks holding other line-break characters, with a line running across each boundary.
    chunks = [b"one\ntwo", b" still two\xc2\x85\xe2\x80\xa8\n", b"three\n", b"four\r", b"\nfive\x1c\n", b"six"]
    splitter = LineSplitter()
    assert [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.finish() == [
        "one\n", "two still two\x85\u2028\n", "three\n", "four\r\n", "five\x1c\n", "six"
    ]


LINE_TEXT = st.text(alphabet=st.sampled_from(list("ab\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029é✓🚀")), max_size=60)


@given(text=LINE_TEXT, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_lines_are_the_text_cut_after_each_newline(text: str, cuts: list[int]) -> None:
    data = text.encode()
    lines = split_all(data, sorted({min(cut, len(data)) for cut in cuts}))
    assert "".join(lines) == text
    assert all(line.endswith("\n") and "\n" not in line[:-1] for line in lines[:-1])
    assert len([line for line in lines if line.endswith("\n")]) == text.count("\n")


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


@pytest.mark.parametrize(
    "chunk",
    [
        base64.b64encode(bytes(range(256)) * 3).decode(),
        "aGVsbG8=",
        "aGVs bG8=\n",  # whitespace and other characters outside the alphabet are skipped
        "aGVs*bG8=",
        "aGVsbG8=aGVsbG8=",  # data after the padding is ignored
        "",
    ],
)
def test_chunks_decode_as_the_standard_library_decodes_them(chunk: str) -> None:
    assert decode_chunk(chunk) == base64.b64decode(chunk)


async def test_a_chunk_that_is_not_base64_is_a_malformed_response() -> None:
    async def broken(variables: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
        yield base64.b64encode(b"fine\n").decode(), 5
        yield "aGVsbG8", 12  # cut short: no padding

    stream = LogStream(broken, {"name": "r", "offset": 0})
    assert await stream.next_batch() == ["fine\n"]
    with pytest.raises(MalformedResponseError, match="not base64"):
        await stream.next_batch()
