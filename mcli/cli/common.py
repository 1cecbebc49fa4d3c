"""What every command-line module shares (including `mcli.local.cli`): the user-facing error type and the
argument types for counts."""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and notes wrap to the terminal as paragraphs (consecutive unindented lines are refilled
    together, never breaking a `mcli set api-key` at its hyphen); indented lines (examples) keep their breaks."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                words = " ".join(paragraph)
                out.append(textwrap.fill(words, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False))
                paragraph.clear()

        for line in text.splitlines():
            if line and not line.startswith(" "):
                paragraph.append(line.strip())
                continue
            flush()
            out.append(line)
        flush()
        return "\n".join(out)


class CLIError(Exception):
    """A problem the user can fix, shown as one `mcli: error: ...` line."""


def non_negative(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_hours(text: str) -> float:
    """An argparse type: a finite number of hours > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of hours, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of hours, got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
