"""How every `mcli.sdk` call runs: its `mcli.aio` twin (imported on first use, keeping `import mcli` cheap)
builds the work, and `_dispatch` runs it on mcli's background loop, or hands back a Future.
"""

import concurrent.futures
import warnings
from collections.abc import Coroutine
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeVar

from mcli.core import loop

if TYPE_CHECKING:
    import mcli.aio as _aio
else:

    class _LazyModule:
        """`mcli.aio`, imported on first use: the transport stack loads then, keeping `import mcli` fast."""

        def __init__(self, name: str) -> None:
            self._name = name

        def __getattr__(self, attribute: str) -> Any:
            return getattr(import_module(self._name), attribute)

    _aio = _LazyModule("mcli.aio")


T = TypeVar("T")


def _deprecated(argument: str, advice: str) -> None:
    warnings.warn(f"`{argument}` is deprecated: {advice}", DeprecationWarning, stacklevel=3)


def _dispatch(work: Coroutine[Any, Any, T], future: bool) -> "T | concurrent.futures.Future[T]":
    return loop.submit(work) if future else loop.run(work)


# What the modules of mcli.sdk (and Run's methods) share; the public names are in mcli/sdk/__init__.py.
__all__ = ["T", "_aio", "_deprecated", "_dispatch"]
