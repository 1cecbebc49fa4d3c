"""Rewriting a run config's errors: pydantic's validation errors as one RunConfigException that names each field,
and an error from a YAML file as `path:line:column: message` with the offending line."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mcli.core.errors import RunConfigException
from mcli.models import yaml_source

if TYPE_CHECKING:
    from pydantic import ValidationError


def config_error(
    exc: ValidationError, valid_keys_at: Callable[[Sequence[str]], list[str]]
) -> RunConfigException:
    """One message per problem, naming the dotted field; an unknown key gets a "did you mean" hint.

    Args:
        exc: pydantic's error.
        valid_keys_at: The keys accepted at a location (`[]` for the top level, `["compute"]`...).
    """
    problems: list[str] = []
    fields: list[str] = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        field = ".".join(location)
        cause = error.get("ctx", {}).get("error")
        fields.extend(cause.fields if isinstance(cause, RunConfigException) and cause.fields else [field])
        if isinstance(cause, RunConfigException):
            # Raised by our own checks, which already name the nested path.
            problems.append(str(cause))
        elif error["type"] == "extra_forbidden":
            parent, key = location[:-1], location[-1]
            valid = valid_keys_at(parent)
            close = difflib.get_close_matches(key, valid, n=1)
            hint = (
                f"did you mean {'.'.join([*parent, close[0]])!r}?"
                if close
                else f"valid fields are: {', '.join(sorted(valid))}"
            )
            problems.append(f"unknown field {field!r}; {hint}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            message = f"{field}: {message}" if field else message
            if error["type"] != "value_error":
                # Type errors are clearer with the offending value; our own messages already describe it.
                shown = repr(error["input"])
                message += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
            problems.append(message)
    return RunConfigException("invalid run config: " + "; ".join(problems), fields)


def locate_error(path: str, error: RunConfigException, text: str | None = None) -> RunConfigException:
    """The error as `path:line:column: message` with the offending line of the YAML file (read if `text` is
    None), pointing at the first field the error names."""
    if text is None:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    # An unknown field is wrong by its name; a known one by its value.
    at_key = "unknown field" in str(error)
    line, column = yaml_source.field_position(text, error.fields, at_key)
    return RunConfigException(yaml_source.describe(path, text, line, column, str(error)), error.fields)
