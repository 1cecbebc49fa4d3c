"""The server's fast time and JSON helpers give exactly what the standard library gives."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime

import pytest

from mcli.local import fastjson
from mcli.local.timeutil import format_datetime


def _reference(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _outcome(function: object, ts: float) -> str:
    try:
        return function(ts)  # type: ignore[operator,no-any-return]
    except (ValueError, OverflowError, OSError) as error:
        return type(error).__name__


EDGES = [
    0, 0.0, 1e-7, 0.0005, 0.9995, 0.9999994999, 0.9999995, 0.4999995, 86399.9999996, 1_700_000_000.123456,
    1_700_000_000.9995, 1_700_000_000.9999999, 951_782_400.5, 4_102_444_799.9999, 253_402_300_799.0,
    253_402_300_799.9999995, -1.5, -1e-7, 1e20, math.nan, math.inf, -math.inf,
]  # fmt: skip


def test_dates_are_formatted_as_datetime_formats_them() -> None:
    rng = random.Random(14)
    cases = list(EDGES)
    for _ in range(20_000):
        cases.append(rng.uniform(0, 4e9))
        cases.append(rng.randint(0, 4_000_000_000) + rng.choice([0.0005, 0.9995, 0.5, 5e-7, 0.9999995, 0.001]))
    mismatches = [ts for ts in cases if _outcome(format_datetime, ts) != _outcome(_reference, ts)]
    assert mismatches == []


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True, "é✓"], "c": {"d": 0.1, "e": 1e16, "f": 1e-5, "g": -0.0}},
        {"big": 123456789012345678901234567890, "neg": -(2**70)},
        {"text": "digits inside a string 12345678901234567890", "n": 2**63 - 1},
        [],
        "plain",
    ],
)
def test_json_round_trips_to_the_same_values(value: object) -> None:
    text = json.dumps(value)
    assert fastjson.loads(text) == json.loads(text)
    assert json.loads(fastjson.dumps(value)) == value


def test_big_integers_keep_every_digit() -> None:
    text = '{"id": 123456789012345678901234567890}'
    assert fastjson.loads(text)["id"] == 123456789012345678901234567890
    assert fastjson.dumps({"id": 2**70}) == b'{"id":1180591620717411303424}'


def test_what_orjson_refuses_is_written_by_the_standard_library() -> None:
    assert json.loads(fastjson.dumps({1: "a"})) == {"1": "a"}
