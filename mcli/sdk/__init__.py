"""The runs API the seed documents, synchronous, with `future=True` Futures.

Every function is a thin wrapper over its twin in `mcli.aio`: arguments are checked here, at call time, and the
work runs on mcli's one background event loop, so these work from scripts, threads and notebooks alike.
"""

import concurrent.futures
import warnings
from collections.abc import AsyncGenerator, Coroutine, Generator, Iterable, Mapping
from enum import Enum
from typing import Any, Literal, TypeVar, overload

from mcli.config import initialize as _initialize
from mcli.config import save_api_key
from mcli.core import loop
from mcli.core.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InstanceTypeUnavailable,
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
    """Launch a run. Raises InstanceTypeUnavailable if the requested compute can never be placed."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    if _priority is not None:
        _deprecated("_priority", "set `scheduling: {priority: ...}` in the RunConfig")
        config = mcli.aio.as_run_config(run)
        scheduling = config.scheduling.model_copy(update={"priority": str(_priority)})
        run = config.model_copy(update={"scheduling": scheduling})
    if _job_type is not MCLIJobType.RUN:
        _deprecated("_job_type", "every run is a training run")
    return _dispatch(mcli.aio.create_run(run, timeout=None if future else timeout), future)


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
    include_details: bool = False,
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
    include_details: bool = False,
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
    include_details: bool = False,
    include_deleted: bool = False,
    ended_before: Any = None,
    ended_after: Any = None,
    user_emails: Iterable[str] | None = None,
) -> "list[Run] | concurrent.futures.Future[list[Run]]":
    """Runs matching every given filter, newest first, following pages transparently.

    `ended_before`/`ended_after` bound when runs ended; `user_emails` selects whose runs (default: your own).
    """
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    if clusters is not None:
        _deprecated("clusters", "use `cluster_names`")
    work = mcli.aio.get_runs(
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
    """One run by name. Raises NotFoundError (a KubernetesException, 404) when it does not exist."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    work = mcli.aio.get_run(run, timeout=None if future else timeout, include_details=include_details)
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
    """Stop runs. An empty list does nothing and sends nothing."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    return _dispatch(mcli.aio.stop_runs(runs, reason=reason, timeout=None if future else timeout), future)


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
    """Stop one run."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    return _dispatch(mcli.aio.stop_run(run, reason=reason, timeout=None if future else timeout), future)


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
    """Delete runs, stopping active ones first. An empty list does nothing and sends nothing."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    return _dispatch(mcli.aio.delete_runs(runs, timeout=None if future else timeout), future)


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
    """Delete one run."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    return _dispatch(mcli.aio.delete_run(run, timeout=None if future else timeout), future)


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
    """Merge keys into a run's metadata."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    work = mcli.aio.update_run_metadata(run, metadata, timeout=None if future else timeout)
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
    """The whole log of a run as it is now, as one string."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    work = mcli.aio.get_run_logs(
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
        loop.run(stream.aclose())


def log_text(
    run: str | Run,
    rank: int | None = None,
    timestamps: bool = False,
    *,
    failed: bool = False,
    tail: int | None = None,
    timeout: float | None = 10,
) -> Generator[str, None, None]:
    """The log as it is now, in text pieces as they arrive (not cut into lines), so that a caller copying it out
    holds a few chunks at a time; `timeout` bounds opening the stream. Used by `mcli logs`."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    opening = mcli.aio.log_text_stream(run, rank, timestamps, timeout=timeout, failed=failed, tail=tail)
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
    """A generator of a run's log lines, live until the run ends; `timeout` bounds opening the stream.

    Each line keeps its newline (the last one may have none), so `"".join(lines)` is the log exactly.
    """
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    opening = mcli.aio.follow_run_logs(
        run, rank, timestamps, timeout=None if future else timeout, tail=tail, resumption=resumption
    )
    if not future:
        return _lines(loop.run(opening))
    result: concurrent.futures.Future[Generator[str, None, None]] = concurrent.futures.Future()

    def opened(done: "concurrent.futures.Future[LogStream]") -> None:
        if done.cancelled():
            result.cancel()
        elif (error := done.exception()) is not None:
            result.set_exception(error)
        else:
            result.set_result(_lines(done.result()))

    loop.submit(opening).add_done_callback(opened)
    return result


def watch_run_status(run: str | Run) -> Generator[Run, None, None]:
    """A generator of the Run at each status change, starting with its current status."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    return _updates(mcli.aio.watch_run_status(run))


def _updates(updates: AsyncGenerator[Run, None]) -> Generator[Run, None, None]:
    async def step() -> Run | None:
        return await anext(updates, None)

    try:
        while (update := loop.run(step())) is not None:
            yield update
    finally:
        loop.run(updates.aclose())


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
    """Wait until the run reaches `status`; RunFailed if it ends FAILED or STOPPED first; TimeoutError after `timeout`."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    work = mcli.aio.wait_for_run_status(run, status, timeout=None if future else timeout)
    return _dispatch(work, future)


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

    `max_duration` is in hours; on a running run it moves the deadline (counted from when the current execution
    started). `max_retries` is how many times a failed execution is resumed automatically.
    """
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    work = mcli.aio.update_run(
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
    """The clusters runs can go to (all, or those named); with `include_utilization`, what is in use on them."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    work = mcli.aio.get_clusters(
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
    """One cluster by name, with what is in use on it; NotFoundError when there is none."""
    import mcli.aio  # the transport stack loads on first use, keeping `import mcli` fast

    work = mcli.aio.get_cluster(
        cluster, include_utilization=include_utilization, timeout=None if future else timeout
    )
    return _dispatch(work, future)



def initialize(api_key: str | None = None) -> None:
    """Create mcli's config file if missing, and save `api_key` if given."""
    _initialize(api_key)


def set_api_key(api_key: str) -> None:
    """Save the API key to the config file; later calls use it (MOSAICML_API_KEY in the environment still wins)."""
    save_api_key(api_key)


__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "BadRequestError",
    "ClusterDetails",
    "ConflictError",
    "InstanceTypeUnavailable",
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
    "stop_run",
    "stop_runs",
    "update_run",
    "update_run_metadata",
    "wait_for_run_status",
    "watch_run_status",
]
