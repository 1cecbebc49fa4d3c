"""Operation documents as the generated client sends them, for the calls that read answers as plain JSON.

A listing of thousands of runs is parsed straight into `Run` objects (`Run.from_json`), skipping the generated
result models; it sends the same document the generated client would: the operation from `queries/` plus the
fragments it uses.
"""

import functools
import re
from pathlib import Path

QUERIES = Path(__file__).with_name("queries")
_FRAGMENT = re.compile(r"fragment\s+(\w+)\s+on\s+\w+\s*\{")
_SPREAD = re.compile(r"\.\.\.\s*(?!on\b)(\w+)")


def _blocks(text: str) -> dict[str, str]:
    """Each fragment definition in `text`, by name (braces matched, so nested selections stay inside)."""
    found: dict[str, str] = {}
    for match in _FRAGMENT.finditer(text):
        depth = 0
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                found[match.group(1)] = text[match.start() : end + 1]
                break
    return found


@functools.cache
def _fragments() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(QUERIES.glob("*.graphql")):
        found.update(_blocks(path.read_text(encoding="utf-8")))
    return found


@functools.cache
def document(name: str) -> str:
    """`queries/<name>.graphql`'s operation followed by every fragment it uses, directly or not."""
    text = (QUERIES / f"{name}.graphql").read_text(encoding="utf-8")
    operation = _FRAGMENT.split(text, maxsplit=1)[0].strip()
    fragments = _fragments()
    used: list[str] = []
    pending = _SPREAD.findall(operation)
    while pending:
        fragment = pending.pop(0)
        if fragment not in used:
            used.append(fragment)
            pending += _SPREAD.findall(fragments[fragment])
    # Fragments in name order, as the generated client lists them.
    return "\n\n".join([operation, *(fragments[fragment] for fragment in sorted(used))]) + "\n"
