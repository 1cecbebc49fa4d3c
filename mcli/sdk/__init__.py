"""The runs API the seed documents, synchronous, with `future=True` Futures.

Every function is a thin wrapper over its twin in `mcli.aio`: arguments are checked here, at call time, and the
work runs on mcli's one background event loop, so these work from scripts, threads and notebooks alike.
"""

import concurrent.futures
import warnings
from collections.abc import AsyncGenerator, Coroutine, Generator, Iterable, Mapping
from enum import Enum
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from mcli.config import initialize as _initialize
from mcli.config import save_api_key
from mcli.core import loop
from mcli.core.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    CallTimeoutError,
    ConflictError,
    InstanceTypeUnavailable,
    InvalidArgumentError,
    KubernetesException,
    MAPIException,
    MCLIConfigError,
    MCLIException,
    NotFoundError,
    RunConfigException,
    RunFailed,
)
from mcli.logs import LogLine, LogStream
from mcli.models import Run, RunConfig, RunStatus
from mcli.models.cluster import ClusterDetails

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


class MCLIJobType(Enum):
    """Deprecated: the kind of job (the seed's `_job_type`)."""

    RUN = "run"
    INTERACTIVE = "interactive"


def _deprecated(argument: str, advice: str) -> None:
    warnings.warn(f"`{argument}` is deprecated: {advice}", DeprecationWarning, stacklevel=3)


def _dispatch(work: Coroutine[Any, Any, T], future: bool) -> "T | concurrent.futures.Future[T]":
    return loop.submit(work) if future else loop.run(work)


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
def get_run_logs(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    timeout: float | None = 10,
    future: Literal[False] = False,
    failed: bool = False,
    *,
    tail: int | None = None,
    resumption: int | None = None,
) -> str: ...
@overload
def get_run_logs(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    timeout: float | None = 10,
    *,
    future: Literal[True],
    failed: bool = False,
    tail: int | None = None,
    resumption: int | None = None,
) -> "concurrent.futures.Future[str]": ...
def get_run_logs(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    timeout: float | None = 10,
    future: bool = False,
    failed: bool = False,
    *,
    tail: int | None = None,
    resumption: int | None = None,
) -> "str | concurrent.futures.Future[str]":
    """Get the current logs for an active or completed run

    Get the current logs for an active or completed run in the MosaicML platform. This returns the full logs as a
    `str`, as they exist at the time the request is made. If you want to follow the logs for an active run
    line-by-line, use `follow_run_logs()`.

    Args:
        run (str | Run): The run to get logs for.
        rank (Optional[int]): Node rank of a run to get logs for. Defaults to the lowest available rank.
        timestamps (bool): If True, each log line will also contain the timestamp at which it was emitted; parse
            it with `LogLine.from_line()`.
        timeout (Optional[float]): Time, in seconds, in which the call should complete (the whole log fetched).
            If it takes too long, a TimeoutError will be raised. If `future` is True, this value will be ignored.
        future (bool): Return the output as a Future. If True, the call will return immediately and the request
            will be processed in the background. This takes precedence over the `timeout` argument. To get the
            log text, use `return_value.result()` with an optional `timeout` argument.
        failed (bool): Read the first failed rank's log instead (do not pass `rank` with it).
        tail (Optional[int]): Keyword only. Only the last this many lines.
        resumption (Optional[int]): Keyword only. Read this execution of a restarted run (0-based).

    Returns:
        str: The log text (or a Future of it).

    Raises:
        KubernetesException (HTTPStatus.NOT_FOUND): Raised if the requested run does not exist.
        KubernetesException (HTTPStatus.BAD_REQUEST): Raised if the run does not have a node of the requested rank.
    """
    work = _aio.get_run_logs(
        run,
        rank,
        timestamps,
        timeout=None if future else timeout,
        failed=failed,
        tail=tail,
        resumption=resumption,
    )
    return _dispatch(work, future)


def _lines(stream: LogStream) -> Generator[str, None, None]:
    """Lines (or text pieces) of an open stream; one hop to the loop per chunk. Closing the generator
    unsubscribes."""
    try:
        while (batch := loop.run(stream.next_batch())) is not None:
            yield from batch
    finally:
        # Bounded, and skipped while the interpreter exits: a generator left unfinished never delays the exit.
        loop.run_cleanup(stream.aclose())


def log_text(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    *,
    failed: bool = False,
    tail: int | None = None,
    timeout: float | None = 10,
    resumption: int | None = None,
) -> Generator[str, None, None]:
    """The log as it is now, in text pieces as they arrive (not cut into lines)

    A caller copying it out holds a few chunks at a time (`mcli logs` uses it).

    Args:
        run, rank, timestamps, failed, tail, resumption: As in `get_run_logs`.
        timeout (Optional[float]): Seconds for opening the stream (not for reading it); else TimeoutError.

    Returns:
        Generator[str]: The text pieces; `"".join(...)` is the log.

    Raises:
        KubernetesException (HTTPStatus.NOT_FOUND): Raised if the requested run does not exist.
        KubernetesException (HTTPStatus.BAD_REQUEST): Raised if the run does not have a node of the requested rank.
    """
    opening = _aio.log_text_stream(
        run, rank, timestamps, timeout=timeout, failed=failed, tail=tail, resumption=resumption
    )
    return _lines(loop.run(opening))


@overload
def follow_run_logs(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    timeout: float | None = 10,
    future: Literal[False] = False,
    *,
    tail: int | None = None,
    resumption: int | None = None,
) -> Generator[str, None, None]: ...
@overload
def follow_run_logs(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    timeout: float | None = 10,
    *,
    future: Literal[True],
    tail: int | None = None,
    resumption: int | None = None,
) -> "concurrent.futures.Future[Generator[str, None, None]]": ...
def follow_run_logs(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    timeout: float | None = 10,
    future: bool = False,
    *,
    tail: int | None = None,
    resumption: int | None = None,
) -> "Generator[str, None, None] | concurrent.futures.Future[Generator[str, None, None]]":
    """Follow the logs for an active or completed run in the MosaicML platform

    This returns a generator of individual log lines, line-by-line, and will wait until new lines are produced if
    the run is still active. Each line keeps its newline (the last one may have none), so `"".join(lines)` is the
    log exactly. If you are only looking for the logs up until the time of the request, consider using
    `get_run_logs()` instead. Closing the generator (or leaving it unfinished at exit) unsubscribes; the run keeps
    going.

    Args:
        run (str | Run): The run to get logs for.
        rank (Optional[int]): Node rank of a run to get logs for. Defaults to the lowest available rank.
        timestamps (bool): If True, each log line will also contain the timestamp at which it was emitted.
        timeout (Optional[float]): Time, in seconds, in which opening the stream should complete (following it
            takes as long as the run). If it takes too long, a TimeoutError will be raised. If `future` is True,
            this value will be ignored.
        future (bool): Return the output as a Future. If True, the call will return immediately and the stream
            will be opened in the background. This takes precedence over the `timeout` argument. To get the
            generator, use `return_value.result()` with an optional `timeout` argument.
        tail (Optional[int]): Keyword only. Start this many lines before the end.
        resumption (Optional[int]): Keyword only. Read this execution of a restarted run (0-based).

    Returns:
        If future is False: a line-by-line Generator of the logs for a run. Otherwise: a Future of that generator.

    Raises:
        KubernetesException (HTTPStatus.NOT_FOUND): Raised if the requested run does not exist.
        KubernetesException (HTTPStatus.BAD_REQUEST): Raised if the run does not have a node of the requested rank.
    """
    opening = _aio.follow_run_logs(
        run, rank, timestamps, timeout=None if future else timeout, tail=tail, resumption=resumption
    )
    if not future:
        return _lines(loop.run(opening.open()))
    result: concurrent.futures.Future[Generator[str, None, None]] = concurrent.futures.Future()

    def opened(done: "concurrent.futures.Future[LogStream]") -> None:
        if done.cancelled():
            result.cancel()
        elif (error := done.exception()) is not None:
            result.set_exception(error)
        else:
            result.set_result(_lines(done.result()))

    loop.submit(opening.open()).add_done_callback(opened)
    return result


def watch_run_status(run: str | Run) -> Generator[Run, None, None]:
    """Watch a run's status change

    Args:
        run (str | Run): The run to watch.

    Returns:
        Generator[Run]: A fresh Run at each status change, starting with its current status; it ends after a
        terminal status (COMPLETED, STOPPED, FAILED, FAILED_PULL). Closing it early stops watching.

    Raises:
        NotFoundError: No run has this name.
    """
    return _updates(_aio.watch_run_status(run))


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


def initialize(api_key: str | None = None) -> None:
    """Initialize the MosaicML platform

    Creates mcli's config file (`~/.mosaic/mcli_config`, mode 0600) if it is missing, then saves `api_key` if
    given.

    Args:
        api_key (Optional[str]): Optional value to set.

    Raises:
        ValueError: `api_key` is empty or contains whitespace.
    """
    _initialize(api_key)


def set_api_key(api_key: str) -> None:
    """Set the api key for the MosaicML platform

    Saves it in mcli's config file (mode 0600); later calls use it. MOSAICML_API_KEY in the environment still
    takes precedence (a warning says so).

    Args:
        api_key (str): value to set.

    Raises:
        ValueError: `api_key` is empty or contains whitespace.
    """
    save_api_key(api_key)


# --- run scheduling settings and clusters (0.8.3 surface; everything after the run is keyword-only) ---------


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


@overload
def get_clusters(
    clusters: "Iterable[str | ClusterDetails] | str | None" = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> "list[ClusterDetails]": ...
@overload
def get_clusters(
    clusters: "Iterable[str | ClusterDetails] | str | None" = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
    future: Literal[True],
) -> "concurrent.futures.Future[list[ClusterDetails]]": ...
def get_clusters(
    clusters: "Iterable[str | ClusterDetails] | str | None" = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
    future: bool = False,
) -> "list[ClusterDetails] | concurrent.futures.Future[list[ClusterDetails]]":
    """The clusters runs can go to (all, or those named); with `include_utilization`, what is in use on them.

    Args:
        clusters: Cluster names (or ClusterDetails) to get; all when None.
        include_utilization (bool): Include the GPUs in use and the active and queued runs.
        timeout (Optional[float]): Time, in seconds, in which the call should complete; else TimeoutError.
            Ignored if `future` is True.
        future (bool): Return a Future at once; get the list with `return_value.result()`.

    Returns:
        List[ClusterDetails]: The clusters (or a Future of the list).

    Raises:
        ValueError: A bad cluster name (at call time).
    """
    work = _aio.get_clusters(
        clusters, include_utilization=include_utilization, timeout=None if future else timeout
    )
    return _dispatch(work, future)


@overload
def get_cluster(
    cluster: "str | ClusterDetails",
    *,
    include_utilization: bool = True,
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> "ClusterDetails": ...
@overload
def get_cluster(
    cluster: "str | ClusterDetails",
    *,
    include_utilization: bool = True,
    timeout: float | None = 10,
    future: Literal[True],
) -> "concurrent.futures.Future[ClusterDetails]": ...
def get_cluster(
    cluster: "str | ClusterDetails",
    *,
    include_utilization: bool = True,
    timeout: float | None = 10,
    future: bool = False,
) -> "ClusterDetails | concurrent.futures.Future[ClusterDetails]":
    """One cluster by name, with what is in use on it

    Args:
        cluster: The cluster's name, or a ClusterDetails to refresh.
        include_utilization (bool): Include the GPUs in use and the active and queued runs (default True).
        timeout (Optional[float]): Time, in seconds, in which the call should complete; else TimeoutError.
            Ignored if `future` is True.
        future (bool): Return a Future at once; get the cluster with `return_value.result()`.

    Returns:
        ClusterDetails: The cluster (or a Future of it).

    Raises:
        NotFoundError: No cluster has this name.
    """
    work = _aio.get_cluster(
        cluster, include_utilization=include_utilization, timeout=None if future else timeout
    )
    return _dispatch(work, future)


__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "BadRequestError",
    "CallTimeoutError",
    "ClusterDetails",
    "ConflictError",
    "InstanceTypeUnavailable",
    "InvalidArgumentError",
    "KubernetesException",
    "LogLine",
    "MAPIException",
    "MCLIConfigError",
    "MCLIException",
    "MCLIJobType",
    "NotFoundError",
    "Run",
    "RunConfig",
    "RunConfigException",
    "RunFailed",
    "RunStatus",
    "create_interactive_run",
    "create_run",
    "delete_run",
    "delete_runs",
    "follow_run_logs",
    "get_cluster",
    "get_clusters",
    "get_run",
    "get_run_logs",
    "get_runs",
    "initialize",
    "set_api_key",
    "start_run",
    "start_runs",
    "stop_run",
    "stop_runs",
    "update_run",
    "update_run_metadata",
    "wait_for_run_status",
    "watch_run_status",
]
