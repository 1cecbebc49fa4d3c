"""Runs: launch, list, get, stop and delete (the seed's calls; `mcli.aio.runs` is the twin).

Its length is the seed's surface: each call has its plain and `future=True` overloads and the seed's docstring.
"""

import concurrent.futures
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, Literal, overload

from mcli.models import Run, RunConfig, RunStatus
from mcli.sdk._call import _aio, _deprecated, _dispatch


class MCLIJobType(Enum):
    """Deprecated: the kind of job (the seed's `_job_type`)."""

    RUN = "run"
    INTERACTIVE = "interactive"


@overload
def create_run(
    run: RunConfig | Mapping[str, Any],
    timeout: float | None = 10,
    future: Literal[False] = False,
    _priority: str | None = None,
    _job_type: MCLIJobType = MCLIJobType.RUN,
) -> Run: ...
@overload
def create_run(
    run: RunConfig | Mapping[str, Any],
    timeout: float | None = 10,
    *,
    future: Literal[True],
    _priority: str | None = None,
    _job_type: MCLIJobType = MCLIJobType.RUN,
) -> "concurrent.futures.Future[Run]": ...
def create_run(
    run: RunConfig | Mapping[str, Any],
    timeout: float | None = 10,
    future: bool = False,
    _priority: str | None = None,
    _job_type: MCLIJobType = MCLIJobType.RUN,
) -> "Run | concurrent.futures.Future[Run]":
    """Launch a run

    Launch a run in the MosaicML platform. The provided `run` must contain enough details to fully configure the
    run (at least `image` and `command`). If it does not, an error will be thrown.

    Args:
        run (RunConfig): A run configuration with enough details to launch (a mapping of its fields works too).
            The run will be queued and persisted in the run database.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.
        _priority (Optional[str]): DEPRECATED An optional priority level at which the run should be created; use
            `scheduling={"priority": ...}` in the RunConfig.
        _job_type (MCLIJobType): DEPRECATED An optional "job type" descriptor for the run.

    Returns:
        Run: The run that was launched (or a Future of it, if `future` is True).

    Raises:
        RunConfigException: The config is incomplete or invalid; raised at call time, before any request.
        InstanceTypeUnavailable: Raised if an invalid compute instance is requested (the message says which limit:
            nodes x GPUs per node, or GPU type, from the cluster's capacity).
        ConflictError: A run with this name exists; leave `name` unset for a unique one, or choose another.
        OutcomeUnknownError: The request was sent and the connection broke before the reply. It is never sent
            twice; the message says how to check whether the run was created (`get_runs([name])`).
        MAPIException: Any other platform error; a subclass of MCLIException, as is every error above.
    """
    if _priority is not None:
        _deprecated("_priority", "set `scheduling: {priority: ...}` in the RunConfig")
        config = _aio.as_run_config(run)
        scheduling = config.scheduling.model_copy(update={"priority": str(_priority)})
        run = config.model_copy(update={"scheduling": scheduling})
    if _job_type is not MCLIJobType.RUN:
        _deprecated("_job_type", "every run is a training run")
    return _dispatch(_aio.create_run(run, timeout=None if future else timeout), future)


@overload
def get_runs(
    runs: Iterable[str | Run] | None = None,
    cluster_names: Iterable[Any] | None = None,
    before: Any = None,
    after: Any = None,
    gpu_types: Iterable[Any] | None = None,
    gpu_nums: Iterable[int] | None = None,
    statuses: Iterable[RunStatus | str] | None = None,
    timeout: float | None = 10,
    future: Literal[False] = False,
    clusters: Iterable[Any] | None = None,
    *,
    limit: int | None = None,
    include_details: bool = True,
    include_deleted: bool = False,
    ended_before: Any = None,
    ended_after: Any = None,
    user_emails: Iterable[str] | None = None,
) -> list[Run]: ...
@overload
def get_runs(
    runs: Iterable[str | Run] | None = None,
    cluster_names: Iterable[Any] | None = None,
    before: Any = None,
    after: Any = None,
    gpu_types: Iterable[Any] | None = None,
    gpu_nums: Iterable[int] | None = None,
    statuses: Iterable[RunStatus | str] | None = None,
    timeout: float | None = 10,
    *,
    future: Literal[True],
    clusters: Iterable[Any] | None = None,
    limit: int | None = None,
    include_details: bool = True,
    include_deleted: bool = False,
    ended_before: Any = None,
    ended_after: Any = None,
    user_emails: Iterable[str] | None = None,
) -> "concurrent.futures.Future[list[Run]]": ...
def get_runs(
    runs: Iterable[str | Run] | None = None,
    cluster_names: Iterable[Any] | None = None,
    before: Any = None,
    after: Any = None,
    gpu_types: Iterable[Any] | None = None,
    gpu_nums: Iterable[int] | None = None,
    statuses: Iterable[RunStatus | str] | None = None,
    timeout: float | None = 10,
    future: bool = False,
    clusters: Iterable[Any] | None = None,
    *,
    limit: int | None = None,
    include_details: bool = True,
    include_deleted: bool = False,
    ended_before: Any = None,
    ended_after: Any = None,
    user_emails: Iterable[str] | None = None,
) -> "list[Run] | concurrent.futures.Future[list[Run]]":
    """Get a filtered list of runs

    List runs that have been launched in the MosaicML platform, newest first. The returned list will contain all
    of the details stored about the requested runs (`config.image`, `config.command`, `submitted_config`, `nodes`,
    `lifecycle`, `metadata`) unless `include_details=False`.

    Args:
        runs (Optional[List[str] | List[Run]]): List of run names on which to get information.
        cluster_names (Optional[List[str] | List[Cluster]]): List of cluster names to filter runs. Only runs
            submitted to these clusters will be returned.
        before (Optional[datetime | date | str]): Only runs created before this time.
        after (Optional[datetime | date | str]): Only runs created at or after this time.
        gpu_types (Optional[List[str] | List[GPUType]]): List of gpu types to filter runs. Only runs scheduled on
            these GPUs will be returned.
        gpu_nums (Optional[List[int]]): List of gpu counts to filter runs. Only runs scheduled on this number of
            GPUs will be returned.
        statuses (Optional[List[str] | List[RunStatus]]): List of run statuses to filter runs. Only runs currently
            in these phases will be returned.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.
        clusters: DEPRECATED alias of `cluster_names`.
        limit (Optional[int]): Keyword only. At most this many runs (default: all, following pages).
        include_details (bool): Keyword only. True (default) returns every stored detail; False is a cheaper
            listing without the submitted config, nodes, lifecycle, events and metadata.
        include_deleted (bool): Keyword only. Include deleted runs.
        ended_before, ended_after: Keyword only. Bound when runs ended (runs that have not ended never match).
        user_emails (Optional[List[str]]): Keyword only. Whose runs (default: your own).

    Returns:
        List[Run]: The runs (or a Future of the list, if `future` is True).

    Raises:
        ValueError: A filter value is invalid; raised at call time, before any request.
        MAPIException: If connecting to MAPI, raised when a MAPI communication error occurs.
    """
    if clusters is not None:
        _deprecated("clusters", "use `cluster_names`")
    work = _aio.get_runs(
        runs,
        cluster_names,
        before,
        after,
        gpu_types,
        gpu_nums,
        statuses,
        timeout=None if future else timeout,
        clusters=clusters,
        limit=limit,
        include_details=include_details,
        include_deleted=include_deleted,
        ended_before=ended_before,
        ended_after=ended_after,
        user_emails=user_emails,
    )
    return _dispatch(work, future)


@overload
def get_run(
    run: str | Run,
    timeout: float | None = 10,
    future: Literal[False] = False,
    *,
    include_details: bool = True,
) -> Run: ...
@overload
def get_run(
    run: str | Run,
    timeout: float | None = 10,
    *,
    future: Literal[True],
    include_details: bool = True,
) -> "concurrent.futures.Future[Run]": ...
def get_run(
    run: str | Run, timeout: float | None = 10, future: bool = False, *, include_details: bool = True
) -> "Run | concurrent.futures.Future[Run]":
    """Get one run by name, with all its details

    Args:
        run (str | Run): The run's name, or a Run to refresh.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.
        include_details (bool): Keyword only. As in `get_runs`.

    Returns:
        Run: The run (or a Future of it).

    Raises:
        NotFoundError: No run has this name (a KubernetesException with status 404).
    """
    work = _aio.get_run(run, timeout=None if future else timeout, include_details=include_details)
    return _dispatch(work, future)


@overload
def stop_runs(
    runs: Iterable[str | Run],
    timeout: float | None = 10,
    future: Literal[False] = False,
    *,
    reason: str | None = None,
) -> list[Run]: ...
@overload
def stop_runs(
    runs: Iterable[str | Run],
    timeout: float | None = 10,
    *,
    future: Literal[True],
    reason: str | None = None,
) -> "concurrent.futures.Future[list[Run]]": ...
def stop_runs(
    runs: Iterable[str | Run], timeout: float | None = 10, future: bool = False, *, reason: str | None = None
) -> "list[Run] | concurrent.futures.Future[list[Run]]":
    """Stop a list of runs

    Stop a list of runs currently running in the MosaicML platform. Every name is checked first: if any matches
    no run, nothing is stopped. An empty list does nothing and sends nothing.

    Args:
        runs (Optional[List[str] | List[Run]]): A list of runs or run names to stop.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.
        reason (Optional[str]): Keyword only. Why the runs are stopped, shown with each run.

    Returns:
        List[Run]: The runs with their status right after the request: STOPPING or TERMINATING while their
        processes end. STOPPED is reached once every process of a run has exited, typically within seconds (up
        to about 40 seconds on a busy cluster); `wait_for_run_status(run, "STOPPED")` waits for it.

    Raises:
        NotFoundError: A name matches no run (a KubernetesException, 404); the message names it.
        KubernetesException: Raised if stopping any of the requested runs failed. You can freely retry any stopped
            and unstopped runs if this error is raised due to a connection issue.
    """
    return _dispatch(_aio.stop_runs(runs, reason=reason, timeout=None if future else timeout), future)


@overload
def stop_run(
    run: str | Run,
    timeout: float | None = 10,
    future: Literal[False] = False,
    *,
    reason: str | None = None,
) -> Run: ...
@overload
def stop_run(
    run: str | Run,
    timeout: float | None = 10,
    *,
    future: Literal[True],
    reason: str | None = None,
) -> "concurrent.futures.Future[Run]": ...
def stop_run(
    run: str | Run, timeout: float | None = 10, future: bool = False, *, reason: str | None = None
) -> "Run | concurrent.futures.Future[Run]":
    """Stop one run

    Args:
        run (str | Run): The run to stop.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.
        reason (Optional[str]): Keyword only. Why the run is stopped.

    Returns:
        Run: The run with its status right after the request (see `stop_runs`).

    Raises:
        NotFoundError: No run has this name.
    """
    return _dispatch(_aio.stop_run(run, reason=reason, timeout=None if future else timeout), future)


@overload
def delete_runs(
    runs: Iterable[str | Run],
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> list[Run]: ...
@overload
def delete_runs(
    runs: Iterable[str | Run],
    timeout: float | None = 10,
    *,
    future: Literal[True],
) -> "concurrent.futures.Future[list[Run]]": ...
def delete_runs(
    runs: Iterable[str | Run], timeout: float | None = 10, future: bool = False
) -> "list[Run] | concurrent.futures.Future[list[Run]]":
    """Delete a list of runs

    Delete a list of runs in the MosaicML platform. Any runs that are currently running will first be stopped.
    Every name is checked first: if any matches no run, nothing is deleted. An empty list does nothing.

    Args:
        runs (Optional[List[str] | List[Run]]): A list of runs or run names to delete.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.

    Returns:
        List[Run]: The deleted runs (or a Future of the list).

    Raises:
        NotFoundError: A name matches no run (a KubernetesException, 404); the message names it.
    """
    return _dispatch(_aio.delete_runs(runs, timeout=None if future else timeout), future)


@overload
def delete_run(
    run: str | Run,
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> Run: ...
@overload
def delete_run(
    run: str | Run,
    timeout: float | None = 10,
    *,
    future: Literal[True],
) -> "concurrent.futures.Future[Run]": ...
def delete_run(
    run: str | Run, timeout: float | None = 10, future: bool = False
) -> "Run | concurrent.futures.Future[Run]":
    """Delete one run, stopping it first if it is active

    Args:
        run (str | Run): The run to delete.
        timeout (Optional[float]): Time, in seconds, in which the call should complete. If the call takes too
            long, a TimeoutError will be raised (its message says what timed out and after how long). If `future`
            is True, this value will be ignored.
        future (bool): Return the output as a `concurrent.futures.Future`. If True, the call will return
            immediately and the request will be processed in the background. This takes precedence over the
            `timeout` argument. To get the output, use `return_value.result()` with an optional `timeout`
            argument.

    Returns:
        Run: The deleted run (or a Future of it).

    Raises:
        NotFoundError: No run has this name.
    """
    return _dispatch(_aio.delete_run(run, timeout=None if future else timeout), future)


@overload
def create_interactive_run(
    run: RunConfig | Mapping[str, Any],
    *,
    seconds: int | None = None,
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> Run: ...
@overload
def create_interactive_run(
    run: RunConfig | Mapping[str, Any],
    *,
    seconds: int | None = None,
    timeout: float | None = 10,
    future: Literal[True],
) -> "concurrent.futures.Future[Run]": ...
def create_interactive_run(
    run: RunConfig | Mapping[str, Any],
    *,
    seconds: int | None = None,
    timeout: float | None = 10,
    future: bool = False,
) -> "Run | concurrent.futures.Future[Run]":
    """Launch an interactive run: it sleeps for `seconds`, holding its compute, whatever command the config names.

    Args:
        run (RunConfig): The run's config; it needs an `image`, and its command is replaced by the sleep.
        seconds (Optional[int]): How long the run stays up; None means the server's default (an hour locally).
        timeout (Optional[float]): Time, in seconds, in which the call should complete; else TimeoutError.
            Ignored if `future` is True.
        future (bool): Return a Future at once; get the Run with `return_value.result()`.

    Returns:
        Run: The launched run, of run type INTERACTIVE (or a Future of it).

    Raises:
        RunConfigException: The config is invalid (at call time, before any request).
        ValueError: `seconds` is not a whole number from 1 to 2**31 - 1.
    """
    work = _aio.create_interactive_run(run, seconds=seconds, timeout=None if future else timeout)
    return _dispatch(work, future)
