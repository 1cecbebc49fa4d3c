"""One background event loop thread that serves every synchronous caller.

Sync calls and `future=True` hand their coroutine to this loop, so they work from scripts, from many threads at
once and from inside a running event loop (a notebook), with no per-call thread pool.
"""

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            _thread = threading.Thread(target=serve, name="mcli-loop", daemon=True)
            _thread.start()
            ready.wait()
            _loop = loop
        return _loop


def started_loop() -> asyncio.AbstractEventLoop | None:
    """The shared loop if it is running, without starting it."""
    with _lock:
        return _loop if _thread is not None and _thread.is_alive() else None


def submit(coro: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
    """Schedule a coroutine on the shared loop; cancelling the Future cancels the coroutine."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the shared loop and wait for its result in the calling thread."""
    loop = background_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("a synchronous mcli call cannot run on mcli's own loop; use mcli.aio instead")
    finished = threading.Event()

    async def tracked() -> T:
        try:
            return await coro
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(tracked(), loop)
    try:
        return future.result()
    except BaseException:
        # Interrupted (e.g. KeyboardInterrupt): stop the work we were waiting for, and let it unwind.
        future.cancel()
        finished.wait(timeout=2)
        raise


@atexit.register
def _cancel_leftover_work() -> None:
    """At exit, cancel what is still pending on the shared loop (e.g. after Ctrl-C) and let it unwind briefly."""
    loop = started_loop()
    if loop is None:
        return

    async def cancel_pending() -> None:
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1)

    with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
        asyncio.run_coroutine_threadsafe(cancel_pending(), loop).result(timeout=2)
