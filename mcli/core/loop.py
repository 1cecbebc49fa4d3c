"""One background event loop thread that serves every synchronous caller.

Sync calls and `future=True` hand their coroutine to this loop, so they work from scripts, from many threads at
once and from inside a running event loop (a notebook), with no per-call thread pool.
"""

import asyncio
import atexit
import concurrent.futures
import contextlib
import gc
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
# Set once the process is exiting: the loop is never started again, so late cleanup cannot hang the exit.
_exiting = False
_at_exit: list[Callable[[], Coroutine[Any, Any, None]]] = []
# The whole exit cleanup (cancelling leftover work, closing connections) never takes longer than this.
EXIT_BUDGET = 1.5


class LoopClosedError(RuntimeError):
    """The process is exiting, so mcli's background loop no longer runs work."""


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _exiting:
            raise LoopClosedError("mcli's background loop has shut down because the process is exiting")
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
        return _loop if _thread is not None and _thread.is_alive() and not _exiting else None


def submit(coro: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
    """Schedule a coroutine on the shared loop; cancelling the Future cancels the coroutine."""
    try:
        loop = background_loop()
    except LoopClosedError:
        coro.close()
        raise
    return asyncio.run_coroutine_threadsafe(coro, loop)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the shared loop and wait for its result in the calling thread."""
    try:
        loop = background_loop()
    except LoopClosedError:
        coro.close()
        raise
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


def run_cleanup(coro: Coroutine[Any, Any, None], timeout: float = 2.0) -> None:
    """Run cleanup work (closing a stream) on the shared loop, waiting at most `timeout` seconds.

    Never starts the loop and never blocks an exiting interpreter: during exit it does nothing, because the
    process's end closes every connection anyway (and the server keeps the run going).
    """
    loop = started_loop()
    if loop is None or sys.is_finalizing() or threading.current_thread() is _thread:
        coro.close()
        return
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    with contextlib.suppress(concurrent.futures.TimeoutError, concurrent.futures.CancelledError, Exception):
        future.result(timeout=timeout)
    future.cancel()


def at_exit(cleanup: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `cleanup()` on the shared loop when the process exits, after leftover work is cancelled."""
    _at_exit.append(cleanup)


@atexit.register
def _shut_down() -> None:
    """At exit: cancel what is still pending on the shared loop (futures nobody waited for, an abandoned follow),
    close connections, and stop the loop, all within EXIT_BUDGET seconds, whatever the server does."""
    global _exiting
    loop = started_loop()
    with _lock:
        _exiting = True
    if loop is None:
        return

    async def wind_down() -> None:
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=EXIT_BUDGET / 2)
        cleanups = [asyncio.ensure_future(cleanup()) for cleanup in _at_exit]
        if cleanups:
            await asyncio.wait(cleanups, timeout=EXIT_BUDGET / 2)

    future = asyncio.run_coroutine_threadsafe(wind_down(), loop)
    with contextlib.suppress(
        concurrent.futures.TimeoutError, concurrent.futures.CancelledError, RuntimeError
    ):
        future.result(timeout=EXIT_BUDGET)
    loop.call_soon_threadsafe(loop.stop)
    # The interpreter's last act is a full garbage collection over every object still alive: after gql,
    # graphql-core and pydantic are loaded that walk cost a cold script about 50 ms of its 270 ms, to free memory
    # the process is about to return anyway. Freezing moves those objects out of the collector's reach; modules
    # are still cleared (and objects freed by reference counting) as usual, and Python never promised `__del__`
    # for objects alive at exit.
    gc.freeze()
