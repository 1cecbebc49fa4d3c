"""Terminal output: colours, tables, time formatting and the status spinner."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

from mcli.models import Run, RunStatus


class Style:
    """ANSI styling for one stream: only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""

    _CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}

    def __init__(self, stream: TextIO) -> None:
        self.enabled = stream.isatty() and not os.environ.get("NO_COLOR")

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(self._CODES[style] for style in styles)
        return f"\033[{codes}m{text}\033[0m"

    def status(self, status: RunStatus, text: str | None = None) -> str:
        return self(text if text is not None else status.value, *status_styles(status))


_STATUS_STYLES: dict[RunStatus, tuple[str, ...]] = {
    RunStatus.COMPLETED: ("green",),
    RunStatus.RUNNING: ("cyan",),
    RunStatus.FAILED: ("red",),
    RunStatus.FAILED_PULL: ("red",),
    RunStatus.STOPPED: ("yellow",),
    RunStatus.STOPPING: ("yellow",),
    RunStatus.TERMINATING: ("yellow",),
}


def status_styles(status: RunStatus) -> tuple[str, ...]:
    return _STATUS_STYLES.get(status, ())


def format_time(moment: datetime | None) -> str:
    """Local wall-clock time to the minute, as people read it in a table."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def format_duration(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def run_duration(run: Run) -> str:
    """Time since the run started, up to its end (or now while it is active)."""
    if run.started_at is None:
        return "-"
    if run.completed_at is not None:
        end = run.completed_at
    else:
        # A run that ended without a completion time stopped changing at its last update.
        end = run.updated_at if run.status.is_terminal() else datetime.now(UTC)
    return format_duration(max(0.0, (end - run.started_at).total_seconds()))


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    style: Style,
    width: int | None = None,
    shrinkable: Sequence[int] = (),
    colours: Sequence[Sequence[tuple[str, ...]]] | None = None,
) -> list[str]:
    """Left-aligned columns two spaces apart. If wider than `width`, the `shrinkable` columns (widest first) are
    cut with an ellipsis. `colours` gives each cell's styles; they are applied after padding so that escape
    codes never count toward a column's width."""
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]
    if width is not None:
        floor = 6
        while sum(widths) + 2 * (len(widths) - 1) > width:
            candidates = [i for i in shrinkable if widths[i] > max(floor, len(headers[i]))]
            if not candidates:
                break
            widths[max(candidates, key=lambda i: widths[i])] -= 1

    def line(cells: Sequence[str], cell_styles: Sequence[tuple[str, ...]]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            text = cell if len(cell) <= widths[i] else cell[: widths[i] - 1] + "…"
            padded = text if i == len(cells) - 1 else text.ljust(widths[i])
            parts.append(style(padded, *cell_styles[i]) if cell_styles else padded)
        return "  ".join(parts).rstrip()

    lines = [line(headers, [("bold",)] * len(headers))]
    for index, row in enumerate(rows):
        lines.append(line(row, colours[index] if colours else []))
    return lines


def terminal_width(stream: TextIO) -> int | None:
    """The width to fit a table to; None (no limit) when the output goes to a pipe or file, for grep's sake."""
    return shutil.get_terminal_size().columns if stream.isatty() else None


class Spinner:
    """A one-line animated status on stderr while waiting; a no-op unless stderr is a terminal."""

    _FRAMES = "-\\|/"

    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.text = ""
        self._stream = stream
        self._enabled = stream.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Spinner:
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._enabled:
            self._stop.set()
            self._thread.join()
            self._stream.write("\r\033[K")
            self._stream.flush()

    def update(self, text: str) -> None:
        """Show a new status: in place on a terminal, else as a line of its own (for CI logs)."""
        self.text = text
        if not self._enabled:
            self._stream.write(f"{self.label}: {text}\n")
            self._stream.flush()

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            elapsed = format_duration(time.monotonic() - self._started)
            self._stream.write(f"\r\033[K{self._FRAMES[frame % 4]} {self.label} {self.text} ({elapsed})")
            self._stream.flush()
            frame += 1
