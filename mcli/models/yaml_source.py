"""Where in a YAML file a problem is: `file:line:column: message`, then the offending line with a caret.

    examples/run.yaml:2:8: unclosed quoted string
      image: "python:3.11
             ^

Used for syntax errors (from PyYAML's marks) and for invalid or missing fields (from the composed node tree).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import yaml

# PyYAML's (context, problem) wording -> what a person would call it.
_CONTEXTS = {
    "while scanning a quoted scalar": "unclosed quoted string",
    "while parsing a flow sequence": "unclosed '[' list",
    "while parsing a flow mapping": "unclosed '{' mapping",
    "while scanning a simple key": "a key without ':'",
}
_PROBLEMS = {
    "mapping values are not allowed here": "unexpected ':' (indent the line under its key, or quote the value)",
}


def describe(path: str, text: str, line: int, column: int, message: str) -> str:
    """`path:line:column: message` (1-based), the line, and a caret under `column` (0-based input)."""
    lines = text.splitlines()
    if line >= len(lines):  # a problem at the end of the file: point just past its last character
        line = max(len(lines) - 1, 0)
        column = len(lines[line]) if lines else 0
    source = lines[line].replace("\t", " ") if lines else ""
    return f"{path}:{line + 1}:{column + 1}: {message}\n  {source}\n  {' ' * column}^"


def syntax_error(path: str, text: str, error: yaml.YAMLError) -> str:
    """A PyYAML error, located where a person should look (an unclosed quote: where it opens)."""
    import yaml

    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"{path}: not valid YAML: {error}"
    context = _CONTEXTS.get(error.context or "")
    if context is not None and error.context_mark is not None:
        mark = error.context_mark
        message = context
    else:
        mark = error.problem_mark
        problem = error.problem or "not valid YAML"
        message = _PROBLEMS.get(problem, problem)
    return describe(path, text, mark.line, mark.column, message)


def field_position(text: str, fields: Sequence[str], at_key: bool = False) -> tuple[int, int]:
    """(line, column), 0-based, of the first field's value (or its key, with `at_key`; dotted for nested keys);
    for a missing field, its parent mapping's first key, where it would be added. (0, 0) if the text cannot be
    composed."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 0, 0
    if node is None:
        return 0, 0
    parts = fields[0].split(".") if fields else []
    for depth, part in enumerate(parts):
        if not isinstance(node, yaml.MappingNode):
            break
        found = next(((key, value) for key, value in node.value if key.value == part), None)
        if found is None:
            break
        # Go down through each parent's value; only the last part is pointed at by its key.
        node = found[0] if at_key and depth == len(parts) - 1 else found[1]
    return node.start_mark.line, node.start_mark.column
