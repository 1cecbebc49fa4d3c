"""The cyclic garbage collector paused while mcli makes many objects that all stay alive.

Python's collector runs after every few hundred new objects and walks the young ones; when thousands of objects are
made that all outlive the pass (a listing's Runs, the modules of the transport stack), every pass is wasted work,
and the passes add up (a quarter of a 10,000-run listing). Collection resumes as it was, even after an error.
"""

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block, if it was running; resume it after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
