"""JSON for the server's hot paths (a 10,000-run answer is 8 MB; every run row holds two JSON columns) through
orjson, several times faster than the standard library, falling back to the standard library wherever orjson
would answer differently: integers beyond 64 bits (orjson refuses to write them and reads them as floats) and
keys that are not strings. Floats are spelled as Python spells them; non-finite ones never reach here (the JSON
scalar refuses them on input)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# Nineteen digits in a row may be an integer outside 64 bits (anywhere, even inside a string: then the standard
# library merely does the same work more slowly).
_LONG_DIGITS = re.compile(r"\d{19}")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as `json.dumps(value, ensure_ascii=False, separators=(",", ":"))` writes it."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def loads(text: str) -> Any:
    """`json.loads(text)`, the same values."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # e.g. NaN, which the standard library reads
            pass
    return json.loads(text)
