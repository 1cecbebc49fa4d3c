"""Time helpers: timestamps are stored as float UTC epoch seconds and rendered per the conventions."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from mcli.local.errors import bad_request


def now() -> float:
    return time.time()


def format_datetime(ts: float) -> str:
    """`YYYY-MM-DDTHH:MM:SS.sssZ`, the form every client (including 0.3.3 on old Pythons) parses."""
    # isoformat truncates to milliseconds and is about twice as fast as strftime; it ends in "+00:00".
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def format_log_time(ts: float) -> str:
    """RFC 3339 with microseconds, the `timestamps: true` log line prefix."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(value: str, field: str) -> float:
    """Lenient ISO 8601: a date, or a date-time with optional offset (none means UTC), `Z` accepted."""
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        dt = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid date-time for {field}: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
