"""What every command-line module shares (including `mcli.local.cli`): the user-facing error type and the
argument types for counts."""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and notes wrap to the terminal; indented lines (examples) keep their line breaks."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            line if not line or line.startswith(" ") else textwrap.fill(line, width, initial_indent=indent)
            for line in text.splitlines()
        )


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
