"""Log streams: exact lines from base64 chunks, resumed by byte offset after any drop.

Work is done per chunk, not per line: a chunk is decoded once (an incremental UTF-8 decoder keeps characters split
across chunks) and cut into lines with one split. A pump task reads ahead into a bounded queue, and a sync consumer
takes every chunk read ahead in one thread hop.
"""

import asyncio
import binascii
import codecs
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from mcli.core.errors import MalformedResponseError, MAPIException
from mcli.core.retry import RECONNECT, RetryPolicy, resubscribing

_QUEUE_DEPTH = 64
_NOTHING = object()  # no end or error is waiting to be reported


@dataclass(frozen=True)
class LogLine:
    """One log line, split into the time it was written (with `timestamps=True`) and its text.

    Attributes:
        timestamp (Optional[datetime]): When the line was written; None if the line carried no timestamp.
        text (str): The line itself, with its newline.
    """

    timestamp: datetime | None
    text: str

    @classmethod
    def from_line(cls, line: str) -> "LogLine":
        """Parse a line from `follow_run_logs(..., timestamps=True)`: an RFC 3339 time, one space, the text.

        Args:
            line: One line as yielded by `follow_run_logs` or split from `get_run_logs`.

        Returns:
            LogLine: The time and the text; a line without a leading timestamp keeps its whole text.
        """
        stamp, sep, text = line.partition(" ")
        if sep:
            try:
                return cls(datetime.fromisoformat(stamp.replace("Z", "+00:00")), text)
            except ValueError:
                pass
        return cls(None, line)


# The characters besides "\n" at which str.splitlines breaks a line ("\r\n" is one break, so "\r" covers it):
# those an ASCII text can hold, and all of them.
_ASCII_OTHER_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e")
_OTHER_BREAKS = (*_ASCII_OTHER_BREAKS, "\x85", "\u2028", "\u2029")


class LineSplitter:
    """Bytes in, whole lines out (each keeps its `\\n`); no character is lost however the chunks split it.

    Only `\\n` ends a line. A chunk without any other character that `str.splitlines` breaks at (the usual
    case: no `\\r` progress bars) is cut by `splitlines(keepends=True)`, one C pass that keeps the newlines;
    otherwise by a split at `\\n` and a newline put back on each line, about twice the work.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> list[str]:
        text = self._decoder.decode(data)
        others = _ASCII_OTHER_BREAKS if text.isascii() else _OTHER_BREAKS  # isascii reads a flag
        if any(char in text for char in others):
            text = self._pending + text
            cut = text.rfind("\n") + 1
            self._pending = text[cut:]
            return [line + "\n" for line in text[: cut - 1].split("\n")] if cut else []
        lines = text.splitlines(keepends=True)
        if not lines:
            return []
        if self._pending:
            lines[0] = self._pending + lines[0]
        # The last piece waits for the rest of its line, unless the chunk ended with a newline.
        self._pending = "" if lines[-1][-1] == "\n" else lines.pop()
        return lines

    def text(self, data: bytes) -> list[str]:
        """`data` decoded as it comes, not cut into lines (a character split across chunks waits for the rest)."""
        text = self._decoder.decode(data)
        return [text] if text else []

    def finish(self) -> list[str]:
        """The last line when the log does not end with a newline."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return [rest] if rest else []


def decode_chunk(chunk: str) -> bytes:
    """The bytes of a base64 log chunk, exactly as `base64.b64decode` gives them, at SIMD speed.

    pybase64 decodes a 700 KiB chunk about 30 times faster than the standard library, whose decoding was a third of
    a follow's CPU time. Its validating path accepts only canonical base64, on which every decoder agrees; anything
    else goes to the standard library's lenient decoder (characters outside the alphabet skipped), so no chunk
    decodes differently.

    Raises:
        MalformedResponseError: The chunk is not base64 even by the lenient rules.
    """
    import pybase64  # here, not at the top: a process that reads no log never loads it

    try:
        return pybase64.b64decode(chunk, validate=True)
    except binascii.Error:
        pass
    try:
        return binascii.a2b_base64(chunk)
    except (binascii.Error, ValueError) as error:
        raise MalformedResponseError(
            500, f"a log chunk from the server is not base64 ({error}): {chunk[:40]!r}"
        ) from None


Subscribe = Callable[[dict[str, Any]], AsyncIterator[tuple[str, int]]]
# Called when a log ends: the variables of the log that continues it (the run's next resumption), or None.
Continuation = Callable[[], Awaitable[dict[str, Any] | None]]


class LogStream:
    """An async iterator (and async context manager) of a run's log lines.

    `subscribe(variables)` yields `(base64 chunk, end offset)` pairs. After a dropped connection the stream
    resubscribes from the end offset of the last chunk it consumed, so no line is lost or repeated.
    With `lines=False` the batches hold each chunk's text as it came instead (for callers that only copy it out).
    With `then`, the stream goes on, when a log ends, with the log `then` names (from its start), until it names
    none: following a run across its resumptions.
    """

    def __init__(
        self,
        subscribe: Subscribe,
        variables: dict[str, Any],
        *,
        reconnect: RetryPolicy = RECONNECT,
        lines: bool = True,
        then: Continuation | None = None,
    ) -> None:
        self._subscribe = subscribe
        self._then = then
        self._variables = dict(variables)
        self._reconnect = reconnect
        self._lines = lines
        self._splitter = LineSplitter()
        self._queue: asyncio.Queue[list[str] | BaseException | None] = asyncio.Queue(_QUEUE_DEPTH)
        self._pump: asyncio.Task[None] | None = None
        self._buffer: list[str] = []
        self._ended: Any = _NOTHING
        self._done = False
        self._opened = 0
        self.offset = int(variables.get("offset") or 0)

    def start(self) -> "LogStream":
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            cut = self._splitter.feed if self._lines else self._splitter.text
            while True:
                async for chunk, end_offset in resubscribing(self._open, self._reconnect):
                    lines = cut(decode_chunk(chunk))
                    self.offset = end_offset
                    if lines:
                        await self._queue.put(lines)
                tail = self._splitter.finish()
                if tail:
                    await self._queue.put(tail)
                following = await self._then() if self._then is not None else None
                if following is None:
                    break
                self._variables, self.offset = dict(following), 0
            await self._queue.put(None)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            await self._queue.put(error)

    def _open(self) -> AsyncIterator[tuple[str, int]]:
        """(Re)subscribe from the end offset of the last chunk consumed."""
        self._opened += 1
        variables = dict(self._variables)
        variables["offset"] = self.offset
        if self.offset:
            # Past the first byte, the offset says where to start; a tail would move it.
            variables.pop("tail", None)
        return self._subscribe(variables)

    @property
    def reconnects(self) -> int:
        """How many times the stream resubscribed after a dropped connection."""
        return max(0, self._opened - 1)

    async def next_batch(self) -> list[str] | None:
        """The next lines (every chunk already read ahead, at least one), or None at the end of the log.

        Taking all that is queued lets a consumer on another thread (the sync API) pay one thread hop for many
        chunks when the stream runs ahead of it.
        """
        if self._done:
            return None
        self.start()
        item = self._ended if self._ended is not _NOTHING else await self._queue.get()
        self._ended = _NOTHING
        if item is None:
            self._done = True
            return None
        if isinstance(item, BaseException):
            self._done = True
            raise item
        while not self._queue.empty():
            more = self._queue.get_nowait()
            if more is None or isinstance(more, BaseException):
                self._ended = more  # the end (or the error) comes with the next call, after these lines
                break
            item.extend(more)  # each queued list is the stream's own
        return item

    def __aiter__(self) -> "LogStream":
        return self

    async def __anext__(self) -> str:
        while not self._buffer:
            batch = await self.next_batch()
            if batch is None:
                raise StopAsyncIteration
            self._buffer = batch[::-1]
        return self._buffer.pop()

    async def aclose(self) -> None:
        """Stop reading and unsubscribe."""
        self._done = True
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, MAPIException):
                await self._pump

    async def __aenter__(self) -> "LogStream":
        return self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class OpeningLogStream:
    """A log stream being opened: what `mcli.aio.follow_run_logs` returns.

    Like aiohttp's request context managers, it can be used three ways:

    - `async for line in follow_run_logs(run)`: opens, yields every line, and unsubscribes at the end;
    - `async with follow_run_logs(run) as lines`: opens, and unsubscribes when the block exits;
    - `lines = await follow_run_logs(run)`: the open LogStream (close it with `await lines.aclose()`).

    Opening raises at once if the run does not exist or lacks the rank.
    """

    def __init__(self, opening: Coroutine[Any, Any, LogStream]) -> None:
        self._opening = opening
        self._stream: LogStream | None = None

    def __await__(self) -> Generator[Any, None, LogStream]:
        return self._opening.__await__()

    async def __aenter__(self) -> LogStream:
        self._stream = await self._opening
        return self._stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async with self as stream:
            async for line in stream:
                yield line

    def open(self) -> Coroutine[Any, Any, LogStream]:
        """The coroutine that opens the stream (what `await` runs)."""
        return self._opening

    def close(self) -> None:
        """Give up opening (when the stream was neither awaited nor iterated)."""
        self._opening.close()
