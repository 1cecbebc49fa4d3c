"""Run status: watched as it changes, or waited for (`mcli.aio.status` is the twin)."""

import concurrent.futures
from collections.abc import AsyncGenerator, Generator
from typing import Literal, overload

from mcli.core import loop
from mcli.models import Run, RunStatus
from mcli.sdk._call import _aio, _dispatch


@overload
def watch_run_status(
    run: str | Run, *, timeout: float | None = None, future: Literal[False] = False
) -> Generator[Run, None, None]: ...
@overload
def watch_run_status(
    run: str | Run, *, timeout: float | None = None, future: Literal[True]
) -> "Generator[concurrent.futures.Future[Run], None, None]": ...
def watch_run_status(
    run: str | Run, *, timeout: float | None = None, future: bool = False
) -> "Generator[Run, None, None] | Generator[concurrent.futures.Future[Run], None, None]":
    """Watch a run's status change

    Args:
        run (str | Run): The run to watch.
        timeout (Optional[float]): Time, in seconds, to wait for each next status. If it takes longer, a
            `TimeoutError` (`CallTimeoutError`) is raised. A run may take a long time to change status (RUNNING to
            COMPLETED, say), so the default None waits as long as it takes. If `future` is True, this value is
            ignored.
        future (bool): Yield a `concurrent.futures.Future` for each next Run instead of the Run, as the official
            client does; use `return_value.result()` with an optional `timeout` argument to get it. The next
            iteration waits until the previous Future is done; after a terminal status the generator ends, and a
            Future of a watch that ended without one raises StopAsyncIteration.

    Returns:
        Generator[Run]: A fresh Run at each status change, starting with its current status; it ends after a
        terminal status (COMPLETED, STOPPED, FAILED, FAILED_PULL). Closing it early stops watching. With
        `future=True`, a generator of Futures of those Runs.

    Raises:
        NotFoundError: No run has this name.
        TimeoutError: (`CallTimeoutError`) No next status came within `timeout` seconds.
    """
    if future:
        return _update_futures(_aio.watch_run_status(run))
    return _updates(_aio.watch_run_status(run, timeout=timeout))


def _update_futures(updates: AsyncGenerator[Run, None]) -> "Generator[concurrent.futures.Future[Run], None, None]":
    async def step() -> Run:
        return await anext(updates)  # StopAsyncIteration once the watch has ended, as in the official client

    try:
        while True:
            pending = loop.submit(step())
            yield pending
            try:
                update = pending.result()
            except (Exception, concurrent.futures.CancelledError):  # the caller sees it in the Future: watch over
                return
            if update.status.is_terminal():
                return
    finally:
        loop.run_cleanup(updates.aclose())


def _updates(updates: AsyncGenerator[Run, None]) -> Generator[Run, None, None]:
    async def step() -> Run | None:
        return await anext(updates, None)

    try:
        while (update := loop.run(step())) is not None:
            yield update
    finally:
        loop.run_cleanup(updates.aclose())


@overload
def wait_for_run_status(
    run: str | Run,
    status: str | RunStatus,
    timeout: float | None = None,
    future: Literal[False] = False,
) -> Run: ...
@overload
def wait_for_run_status(
    run: str | Run,
    status: str | RunStatus,
    timeout: float | None = None,
    *,
    future: Literal[True],
) -> "concurrent.futures.Future[Run]": ...
def wait_for_run_status(
    run: str | Run, status: str | RunStatus, timeout: float | None = None, future: bool = False
) -> "Run | concurrent.futures.Future[Run]":
    """Wait for a launched run to reach a specific status

    A status counts as reached if the run is at it, passed it on the way (RUNNING once QUEUED was skipped), or
    went through it before ending: a run that ran and then failed did reach RUNNING.

    Args:
        run (str | Run): The run whose status should be watched. This can be provided using the run's name or an
            existing Run object.
        status (str | RunStatus): Status to wait for. This can be any valid RunStatus value (a string in any
            case works). If the run never reaches this state (e.g. it fails or the wait times out), then an error
            will be raised. See exception details below.
        timeout (Optional[float]): Time, in seconds, in which the call should complete (default: no limit). If the
            call takes too long, a TimeoutError will be raised. If `future` is True, this value will be ignored.
        future (bool): Return the output as a Future. If True, the call will return immediately and the wait will
            be processed in the background. This takes precedence over the `timeout` argument. To get the Run
            output, use `return_value.result()` with an optional `timeout` argument.

    Returns:
        Run: The run, with its details, once it reached the status (or a Future of it).

    Raises:
        ValueError: `status` is not a run status (at call time).
        KubernetesException: Raised with status code 404 if the requested run could not be found.
        RunFailed: Raised if the run ended without reaching the requested status.
        TimeoutError: Raised if the run did not reach the correct status in the specified time.
    """
    work = _aio.wait_for_run_status(run, status, timeout=None if future else timeout)
    return _dispatch(work, future)
