"""mcli pauses the garbage collector only while it makes many lasting objects, and leaves it as it found it."""

import subprocess
import sys

import pytest

# A fresh interpreter: mcli.aio (the transport stack) is imported for the first time, as in a script's first call.
SCRIPT = """
import gc
{before}
seen = []
gc.callbacks.append(lambda phase, info: seen.append(info["generation"]) if phase == "start" else None)
import mcli.aio
assert gc.isenabled() is {expected}, "the collector was left " + ("on" if gc.isenabled() else "off")
# Unpaused, the collector ran about a hundred times (8 of them over older objects) while the stack loaded.
assert len(seen) < 10 and set(seen) <= {{0}}, f"collections while the transport stack loaded: {{seen}}"
print("ok")
"""


@pytest.mark.parametrize(
    ("before", "expected"), [("", True), ("gc.disable()", False)], ids=["was-on", "was-off"]
)
def test_loading_the_transport_stack_pauses_the_collector_and_leaves_it_as_it_was(
    before: str, expected: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(before=before, expected=expected)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
