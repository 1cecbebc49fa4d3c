"""What every command shares: the user-facing error type and unwrapping the SDK's sync results."""

from __future__ import annotations

import concurrent.futures
import logging
from typing import TypeVar

T = TypeVar("T")


class CLIError(Exception):
    """A problem the user can fix, shown as one `mcli: error: ...` line."""


def resolved(value: T | concurrent.futures.Future[T]) -> T:
    """The SDK types each call as `value | Future` (one signature for both modes); without `future=True` it
    always returns the value itself, and this narrows the type to say so."""
    return value.result() if isinstance(value, concurrent.futures.Future) else value


def quiet_interrupted_work() -> None:
    """Call on Ctrl-C. The SDK then cancels the request it was waiting for but does not wait for the cancellation
    to finish (mcli/core/loop.py `run`), so at exit asyncio may log "Task was destroyed but it is pending!".
    The user asked to stop; that line is noise."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
