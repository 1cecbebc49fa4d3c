"""Subscription messages carrying long strings (log chunks) parse exactly as json.loads parses them."""

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcli.core.websocket import LIFT_MIN_CHARS, parse_message

# Long strings sit around the length at which they are cut out of the text; some need escaping, which keeps the
# whole message on the plain parser.
LONG = st.builds(
    lambda char, extra: char * (LIFT_MIN_CHARS - 2 + extra),
    st.sampled_from(["A", "+", "/", "=", " ", "é", "\ue000", '"', "\\", "\n"]),
    st.integers(min_value=0, max_value=4),
)
SHORT = st.text(max_size=8)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), SHORT, LONG)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(SHORT, LONG), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=150)
@given(value=VALUE, ascii_only=st.booleans(), spaced=st.booleans())
def test_any_message_parses_as_json_loads_parses_it(value: Any, ascii_only: bool, spaced: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
    assert parse_message(text) == json.loads(text)


def test_a_log_chunk_message_keeps_its_chunk_and_the_rest() -> None:
    chunk = base64.b64encode(bytes(range(256)) * 64).decode()
    message = {
        "id": "7",
        "type": "next",
        "payload": {"data": {"getRunLogsV2": {"chunk": chunk, "endOffset": 9}}},
    }
    parsed = parse_message(json.dumps(message))
    assert parsed == message


def test_a_text_that_names_the_placeholder_is_parsed_plainly() -> None:
    text = json.dumps({"a": "\ue000mcli-lifted-0", "b": "x" * (LIFT_MIN_CHARS * 2)}, ensure_ascii=False)
    assert parse_message(text) == json.loads(text)
