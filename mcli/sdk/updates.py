"""Changing a launched run: its scheduling settings (the 0.8.3 surface; everything after the run is
keyword-only) and metadata, and restarts (`mcli.aio.updates` is the twin).
"""

import concurrent.futures
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

from mcli.models import Run
from mcli.sdk._call import _aio, _dispatch


@overload
def update_run_metadata(
    run: str | Run,
    metadata: Mapping[str, Any],
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> Run: ...
@overload
def update_run_metadata(
    run: str | Run,
    metadata: Mapping[str, Any],
    timeout: float | None = 10,
    *,
    future: Literal[True],
) -> "concurrent.futures.Future[Run]": ...
def update_run_metadata(
    run: str | Run, metadata: Mapping[str, Any], timeout: float | None = 10, future: bool = False
) -> "Run | concurrent.futures.Future[Run]":
    """Merge keys into a run's metadata

    Keys not given are kept; a key given with a new value replaces the old value.

    Args:
        run (str | Run): The run to update.
        metadata (Mapping[str, Any]): JSON values under string keys.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.

    Returns:
        Run: The run with its updated metadata (or a Future of it).

    Raises:
        ValueError: `metadata` is not a mapping of JSON values with string keys (at call time).
        NotFoundError: No run has this name.
    """
    work = _aio.update_run_metadata(run, metadata, timeout=None if future else timeout)
    return _dispatch(work, future)


@overload
def update_run(
    run: str | Run,
    *,
    preemptible: bool | None = None,
    priority: str | None = None,
    max_retries: int | None = None,
    retry_on_system_failure: bool | None = None,
    max_duration: float | None = None,
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> Run: ...
@overload
def update_run(
    run: str | Run,
    *,
    preemptible: bool | None = None,
    priority: str | None = None,
    max_retries: int | None = None,
    retry_on_system_failure: bool | None = None,
    max_duration: float | None = None,
    timeout: float | None = 10,
    future: Literal[True],
) -> "concurrent.futures.Future[Run]": ...
def update_run(
    run: str | Run,
    *,
    preemptible: bool | None = None,
    priority: str | None = None,
    max_retries: int | None = None,
    retry_on_system_failure: bool | None = None,
    max_duration: float | None = None,
    timeout: float | None = 10,
    future: bool = False,
) -> "Run | concurrent.futures.Future[Run]":
    """Change a run's scheduling settings; those left as None keep their value.

    Args:
        run (str | Run): The run to update.
        preemptible (Optional[bool]): Whether the run may be preempted.
        priority (Optional[str]): Priority label, e.g. "low".
        max_retries (Optional[int]): How many times a failed execution is resumed automatically.
        retry_on_system_failure (Optional[bool]): Retry when the failure is the system's.
        max_duration (Optional[float]): Hours; on a running run it moves the deadline (counted from when the
            current execution started).
        timeout (Optional[float]): Time, in seconds, in which the call should complete; else TimeoutError.
            Ignored if `future` is True.
        future (bool): Return a Future at once; get the Run with `return_value.result()`.

    Returns:
        Run: The updated run (or a Future of it).

    Raises:
        ValueError: Nothing to update, or a setting of the wrong type (at call time).
        NotFoundError: No run has this name.
    """
    work = _aio.update_run(
        run,
        preemptible=preemptible,
        priority=priority,
        max_retries=max_retries,
        retry_on_system_failure=retry_on_system_failure,
        max_duration=max_duration,
        timeout=None if future else timeout,
    )
    return _dispatch(work, future)


@overload
def start_runs(
    runs: Iterable[str | Run], *, timeout: float | None = 10, future: Literal[False] = False
) -> list[Run]: ...
@overload
def start_runs(
    runs: Iterable[str | Run], *, timeout: float | None = 10, future: Literal[True]
) -> "concurrent.futures.Future[list[Run]]": ...
def start_runs(
    runs: Iterable[str | Run], *, timeout: float | None = 10, future: bool = False
) -> "list[Run] | concurrent.futures.Future[list[Run]]":
    """Restart stopped or failed runs; each begins a new resumption and comes back PENDING.

    An empty list does nothing and sends nothing.

    Args:
        runs (List[str] | List[Run]): The runs to restart.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If it takes too long, a
            TimeoutError will be raised. If `future` is True, this value will be ignored.
        future (bool): Return the output as a Future at once; get it with `return_value.result()` with an
            optional `timeout` argument.

    Returns:
        List[Run]: The runs, each PENDING at the start of a new resumption (or a Future of the list).

    Raises:
        NotFoundError: A name matches no run; it is named, and no run was started.
        BadRequestError: A run is active or completed; none was started.
    """
    return _dispatch(_aio.start_runs(runs, timeout=None if future else timeout), future)


@overload
def start_run(run: str | Run, *, timeout: float | None = 10, future: Literal[False] = False) -> Run: ...
@overload
def start_run(
    run: str | Run, *, timeout: float | None = 10, future: Literal[True]
) -> "concurrent.futures.Future[Run]": ...
def start_run(
    run: str | Run, *, timeout: float | None = 10, future: bool = False
) -> "Run | concurrent.futures.Future[Run]":
    """Restart one stopped or failed run as a new resumption (PENDING at first)

    Args:
        run (str | Run): The run to restart.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If it takes too long, a
            TimeoutError will be raised. If `future` is True, this value will be ignored.
        future (bool): Return the output as a Future at once; get it with `return_value.result()` with an
            optional `timeout` argument.

    Returns:
        Run: The run, PENDING at the start of a new resumption (or a Future of it).

    Raises:
        NotFoundError: No run has this name.
        BadRequestError: The run is active or completed.
    """
    return _dispatch(_aio.start_run(run, timeout=None if future else timeout), future)
