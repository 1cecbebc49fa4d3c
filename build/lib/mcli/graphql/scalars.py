"""Custom scalars of schema.graphql, as the generated models parse and send them."""

from datetime import UTC, datetime
from typing import Any, TypeAlias

JSONValue: TypeAlias = Any


def parse_datetime(value: Any) -> datetime:
    """Parse MAPI's `YYYY-MM-DDTHH:MM:SS.sssZ` (any ISO 8601 with a zone); a naive value is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z
    else:
        raise ValueError(f"expected an ISO 8601 date-time string, got {type(value).__name__}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def serialize_datetime(value: datetime) -> str:
    """Format as MAPI does: UTC with milliseconds and a `Z`."""
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
