"""Per-rank log files: append-only bytes plus a `.times` index of (byte offset, wall time) per pipe read.

Writers notify followers in memory on every append, so a follower wakes as soon as bytes land on disk.
`RunLogs` knows where each rank's log lives and which logs are being written now.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from bisect import bisect_right
from pathlib import Path

from mcli.local.timeutil import format_log_time

_TIME_ENTRY = struct.Struct("<Qd")
# Bytes per message: well under the client's 1 MiB websocket limit after base64 and JSON framing.
MAX_CHUNK = 512 * 1024
# With timestamps every line grows by a ~28-byte prefix; a small raw slice keeps the worst case (1-byte
# lines) under MAX_CHUNK.
MAX_CHUNK_WITH_TIMESTAMPS = 16 * 1024


class LogFile:
    """One log. `closed` means no more bytes will ever be appended."""

    def __init__(self, path: Path, writable: bool = False, max_bytes: int | None = None) -> None:
        self.path = path
        # A writer stops at `max_bytes`, ending the log with one marker line (`cut` is then True).
        self.max_bytes = max_bytes
        self.cut = False
        self.times_path = path.with_suffix(".times")
        self.closed = not writable
        self._changed = asyncio.Event() if writable else None
        self._offsets: list[int] | None = None
        self._times: list[float] = []
        self._fd = -1
        self._times_fd = -1
        if writable:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._times_fd = os.open(self.times_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            # Appending to a log a previous server wrote (a re-attached rank): drop a torn last time entry so
            # new entries stay aligned, and keep the old entries' times.
            times_size = os.fstat(self._times_fd).st_size
            os.ftruncate(self._times_fd, times_size - times_size % _TIME_ENTRY.size)
            self._load_times()
        self.size = os.path.getsize(path)
        if writable and max_bytes is not None and self.size >= max_bytes:
            self.cut = True  # a re-attached rank whose log already holds the marker

    @property
    def changed(self) -> asyncio.Event | None:
        """The event the next append or close sets; None for a log nobody writes any more."""
        return None if self.closed else self._changed

    def append(self, data: bytes, at: float) -> None:
        if self.cut:
            return  # past the cap: the rank's output is still drained, and dropped
        if self.max_bytes is not None and self.size + len(data) > self.max_bytes:
            data = data[: max(0, self.max_bytes - self.size)]
            self.cut = True
            marker = (
                f"\n[mcli: this log reached the server's limit of {self.max_bytes:,} bytes per rank "
                "(--max-log-bytes); the rest of this rank's output was dropped]\n"
            ).encode()
            data += marker
        os.write(self._fd, data)
        os.write(self._times_fd, _TIME_ENTRY.pack(self.size, at))
        assert self._offsets is not None
        self._offsets.append(self.size)
        self._times.append(at)
        self.size += len(data)
        self._wake()

    def close(self) -> None:
        if self.closed:
            return
        os.close(self._fd)
        os.close(self._times_fd)
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # Swap the event so each waiter sees exactly the change it waited for.
        old = self._changed
        self._changed = asyncio.Event()
        if old is not None:
            old.set()

    def read(self, offset: int, max_bytes: int) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(min(max_bytes, self.size - offset))

    def tail_offset(self, lines: int) -> int:
        """Offset where the last `lines` lines start (a trailing newline does not start an empty line)."""
        if lines <= 0:
            return self.size
        end = self.size
        with open(self.path, "rb") as fh:
            if end > 0:
                fh.seek(end - 1)
                if fh.read(1) == b"\n":
                    end -= 1
            pos = end
            found = 0
            while pos > 0:
                start = max(0, pos - 65536)
                fh.seek(start)
                block = fh.read(pos - start)
                idx = len(block)
                while True:
                    idx = block.rfind(b"\n", 0, idx)
                    if idx < 0:
                        break
                    found += 1
                    if found == lines:
                        return start + idx + 1
                pos = start
        return 0

    def byte_before(self, offset: int) -> bytes:
        if offset <= 0:
            return b""
        with open(self.path, "rb") as fh:
            fh.seek(offset - 1)
            return fh.read(1)

    def _load_times(self) -> None:
        if self._offsets is not None:
            return
        offsets: list[int] = []
        times: list[float] = []
        if self.times_path.exists():
            raw = self.times_path.read_bytes()
            usable = len(raw) - len(raw) % _TIME_ENTRY.size
            for off, at in _TIME_ENTRY.iter_unpack(raw[:usable]):
                offsets.append(off)
                times.append(at)
        self._offsets, self._times = offsets, times

    def time_at(self, offset: int) -> float:
        """When the byte at `offset` was written (the time of the pipe read that delivered it)."""
        self._load_times()
        assert self._offsets is not None
        idx = bisect_right(self._offsets, offset) - 1
        if idx < 0:
            return self._times[0] if self._times else os.path.getmtime(self.path)
        return self._times[idx]

    def with_timestamps(self, data: bytes, start: int, at_line_start: bool) -> bytes:
        """Prefix every line that starts in `data` with the time it was written and one space."""
        out: list[bytes] = []
        cache: dict[float, bytes] = {}

        def prefix(offset: int) -> bytes:
            at = self.time_at(offset)
            text = cache.get(at)
            if text is None:
                text = cache[at] = (format_log_time(at) + " ").encode()
            return text

        if at_line_start and data:
            out.append(prefix(start))
        pos = 0
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                out.append(data[pos:])
                break
            out.append(data[pos : nl + 1])
            pos = nl + 1
            if pos < len(data):
                out.append(prefix(start + pos))
        return b"".join(out)


class RunLogs:
    """Each rank's log under `data_dir/logs`, and the logs being written now (followers share the writer's
    `LogFile`, so they wake on its appends)."""

    def __init__(self, data_dir: Path, max_bytes: int | None = None) -> None:
        self.data_dir = data_dir
        self.max_bytes = max_bytes  # per rank log
        self._live: dict[Path, LogFile] = {}

    def path(self, run_id: str, execution_index: int, rank: int) -> Path:
        return self.data_dir / "logs" / run_id / str(execution_index) / f"rank-{rank}.log"

    def writer(self, path: Path) -> LogFile:
        log = self._live[path] = LogFile(path, writable=True, max_bytes=self.max_bytes)
        return log

    def delete(self, run_id: str) -> None:
        """Remove every log of a run (a deleted run's logs are gone with it)."""
        shutil.rmtree(self.data_dir / "logs" / run_id, ignore_errors=True)

    def finish(self, path: Path) -> None:
        live = self._live.pop(path, None)
        if live is not None:
            live.close()

    def open(self, path: Path) -> LogFile | None:
        """The log at `path` for reading: the live one while it is written, else the file, else None."""
        live = self._live.get(path)
        if live is not None:
            return live
        return LogFile(path) if path.exists() else None


def utf8_complete_length(data: bytes) -> int:
    """Length of the longest prefix of `data` that does not end inside a UTF-8 character."""
    n = len(data)
    for i in range(n - 1, max(n - 4, -1), -1):
        b = data[i]
        if b < 0x80:
            return n
        if b >= 0xC0:
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return n if n - i >= need else i
    return n
