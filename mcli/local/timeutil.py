"""Time helpers: timestamps are stored as float UTC epoch seconds and rendered per the conventions."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime

from mcli.local.errors import bad_request


def now() -> float:
    return time.time()


def format_datetime(ts: float) -> str:
    """`YYYY-MM-DDTHH:MM:SS.sssZ`, the form every client (including 0.3.3 on old Pythons) parses.

    Exactly `datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")` with a `Z` (the fallback for
    times before 1970 or after 9999), about twice as fast: a 10,000-run listing formats 40,000 of them. The
    microseconds are rounded half-to-even as `fromtimestamp` rounds them, then truncated to milliseconds as
    `isoformat` truncates them; the date and the time of day are looked up per day and per second.
    """
    if not 0 <= ts < _YEAR_10000:  # also NaN
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    seconds = int(whole)
    if micros >= 1_000_000:
        seconds += 1
        micros -= 1_000_000
    day, second = divmod(seconds, 86_400)
    date_text = _DATES.get(day)
    if date_text is None:
        if len(_DATES) >= 4096:
            _DATES.clear()
        date_text = _DATES[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
    return date_text + _TIMES_OF_DAY[second] + _MILLIS[micros // 1000]


_YEAR_10000 = 253_402_300_800.0
_DATES: dict[int, str] = {}
_MILLIS = [f".{ms:03d}Z" for ms in range(1000)]


class _TimesOfDay(dict[int, str]):
    """`HH:MM:SS` per second of the day, made on first use."""

    def __missing__(self, second: int) -> str:
        text = self[second] = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        return text


_TIMES_OF_DAY = _TimesOfDay()


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
