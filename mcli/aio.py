"""The async twin of `mcli.sdk`: the one implementation behind both.

Each function checks its arguments and the configuration when it is called (raising at once, before any request)
and returns an awaitable that does the network work. `mcli.sdk` runs those awaitables on its background loop.
"""

import asyncio
import contextlib
import dataclasses
import gc
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import mcli.connection as connection
from mcli.core.errors import (
    APIConnectionError,
    BadRequestError,
    NotFoundError,
    RunFailed,
)
from mcli.core.retry import resubscribing
from mcli.filters import build_clusters_input, build_name_selector, build_runs_page_input
from mcli.graphql.documents import document
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import (
    CreateRunInput,
    GetRunLogsInput,
    StopRunsInput,
    UpdateRunInput,
    UpdateRunMetadataInput,
    WatchRunStatusInput,
)
from mcli.logs import LogStream
from mcli.models import Run, RunConfig, RunConfigError, RunStatus
from mcli.models.cluster import ClusterDetails
from mcli.models.run_config import check_json_value

T = TypeVar("T")

RunRef = str | Run
PAGE_SIZE = 500
# A GraphQL Int (32-bit) of seconds.
MAX_DURATION_SECONDS = 2**31 - 1
CONVERT_SLICE = 50
_FAILURE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.STOPPED, RunStatus.FAILED_PULL})


def _bounded(work: Coroutine[Any, Any, T], timeout: float | None) -> Coroutine[Any, Any, T]:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await work

    return bounded() if timeout is not None else work


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return float(timeout)


def _run_name(run: object) -> str:
    if isinstance(run, Run):
        return run.name
    if isinstance(run, str) and run.strip():
        return run.strip()
    raise ValueError(f"a run must be a run name or a Run, got {run!r}")


def _run_names(runs: object) -> list[str]:
    if isinstance(runs, str | Run):
        return [_run_name(runs)]
    if not isinstance(runs, Iterable):
        raise ValueError(f"runs must be a list of run names or Run objects, got {runs!r}")
    return list(dict.fromkeys(_run_name(run) for run in runs))


def _optional_index(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} (an int >= 0), got {value!r}")
    return value


def _start() -> connection.Credentials:
    # Resolved once per call, here, so that a missing key fails at call time, with no network.
    return connection.credentials()


# --- runs -------------------------------------------------------------------------------------------------


def as_run_config(run: object) -> RunConfig:
    """A RunConfig from a RunConfig or a mapping of its fields."""
    if isinstance(run, RunConfig):
        return run
    if isinstance(run, Mapping):
        return RunConfig.from_dict(run)
    raise RunConfigError(f"run must be a RunConfig or a mapping of its fields, got {type(run).__name__}")


def create_run(run: RunConfig | Mapping[str, Any], *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Launch a run; raises InstanceTypeUnavailable when the requested compute can never be placed."""
    config = as_run_config(run)
    config.validate_for_submit()
    run_input = config.to_run_input()
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> Run:
        return await _create(connection.client(creds), run_input)

    return _bounded(work(), timeout)


async def _create(api: MAPIClient, run_input: dict[str, Any]) -> Run:
    result = await api.create_run(CreateRunInput(run_input=run_input))
    created = result.create_run[0]
    return Run.from_graphql(created, created.details)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a listing builds many objects that all stay alive.

    Thousands of new Run objects would otherwise trigger full collections that scan every one of them again,
    costing about a quarter of a 10,000-run listing. Collection resumes when the listing ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _runs_page(api: MAPIClient, page_input: Any, include_details: bool) -> dict[str, Any]:
    """One getRunsPaginated page as plain JSON: listings parse runs straight into `Run`, with no result models."""
    data = await api.execute(
        query=document("get_runs_paginated"),
        operation_name="GetRunsPaginated",
        variables={"getRunsPaginatedData": page_input, "includeDetails": include_details},
    )
    page: dict[str, Any] = data["getRunsPaginated"]
    return page


async def _page_runs(api: MAPIClient, page_input: Any, include_details: bool, limit: int | None) -> list[Run]:
    """Follow the cursor; the next page is requested before this one is converted, so server and client overlap."""

    async def fetch(request: Any, have: int) -> dict[str, Any]:
        wanted = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - have)
        return await _runs_page(api, request.model_copy(update={"limit": wanted}), include_details)

    runs: list[Run] = []
    seen_cursors: set[str] = set()
    pending: asyncio.Task[dict[str, Any]] | None = asyncio.ensure_future(fetch(page_input, 0))
    try:
        with _gc_paused():
            while pending is not None:
                page = await pending
                pending = None
                items = page["runs"]
                cursor = page.get("cursor")
                have = len(runs) + len(items)
                if page.get("hasNextPage") and cursor and (limit is None or have < limit):
                    if cursor in seen_cursors:
                        raise APIConnectionError(
                            502, "the server returned the same page cursor twice; stopping"
                        )
                    seen_cursors.add(cursor)
                    next_page = page_input.model_copy(update={"cursor": cursor})
                    pending = asyncio.ensure_future(fetch(next_page, have))
                # Convert in slices, yielding between them, so the next request goes out while this page converts.
                for start in range(0, len(items), CONVERT_SLICE):
                    await asyncio.sleep(0)
                    runs.extend(Run.from_json(item) for item in items[start : start + CONVERT_SLICE])
        return runs if limit is None else runs[:limit]
    finally:
        if pending is not None:
            pending.cancel()


def get_runs(
    runs: Iterable[RunRef] | None = None,
    cluster_names: Iterable[Any] | None = None,
    before: Any = None,
    after: Any = None,
    gpu_types: Iterable[Any] | None = None,
    gpu_nums: Iterable[int] | None = None,
    statuses: Iterable[RunStatus | str] | None = None,
    *,
    timeout: float | None = 10,
    clusters: Iterable[Any] | None = None,
    limit: int | None = None,
    include_details: bool = False,
    include_deleted: bool = False,
    ended_before: Any = None,
    ended_after: Any = None,
    user_emails: Iterable[str] | None = None,
) -> Coroutine[Any, Any, list[Run]]:
    """Runs matching every given filter, newest first; pages are followed until `limit` (default: all).

    `ended_before`/`ended_after` bound when runs ended (runs that have not ended never match); `user_emails`
    selects whose runs (by default the caller's own).
    """
    page_input = build_runs_page_input(
        runs=runs,
        cluster_names=cluster_names,
        before=before,
        after=after,
        gpu_types=gpu_types,
        gpu_nums=gpu_nums,
        statuses=statuses,
        clusters=clusters,
        limit=limit,
        include_deleted=include_deleted,
        ended_before=ended_before,
        ended_after=ended_after,
        user_emails=user_emails,
    )
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> list[Run]:
        return await _page_runs(connection.client(creds), page_input, include_details, limit)

    return _bounded(work(), timeout)


async def _fetch_run(api: MAPIClient, name: str, include_details: bool) -> Run:
    page_input = build_runs_page_input(runs=[name], limit=1)
    page = await _runs_page(api, page_input, include_details)
    if not page["runs"]:
        raise NotFoundError(404, f"Run {name} not found")
    return Run.from_json(page["runs"][0])


def get_run(
    run: RunRef, *, timeout: float | None = 10, include_details: bool = True
) -> Coroutine[Any, Any, Run]:
    """One run by name; raises NotFoundError when there is none."""
    name = _run_name(run)
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> Run:
        return await _fetch_run(connection.client(creds), name, include_details)

    return _bounded(work(), timeout)


def stop_runs(
    runs: Iterable[RunRef], *, reason: str | None = None, timeout: float | None = 10
) -> Coroutine[Any, Any, list[Run]]:
    """Stop runs; an empty list does nothing and sends nothing."""
    names = _run_names(runs)
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"reason must be a string, got {reason!r}")
    timeout = _check_timeout(timeout)
    if not names:
        return _done([])
    creds = _start()

    async def work() -> list[Run]:
        options = StopRunsInput(reason=reason) if reason else None
        result = await connection.client(creds).stop_runs(build_name_selector(names), options)
        return [Run.from_graphql(item, item.details) for item in result.stop_runs]

    return _bounded(work(), timeout)


def delete_runs(runs: Iterable[RunRef], *, timeout: float | None = 10) -> Coroutine[Any, Any, list[Run]]:
    """Delete runs, stopping any that are active; an empty list does nothing and sends nothing."""
    names = _run_names(runs)
    timeout = _check_timeout(timeout)
    if not names:
        return _done([])
    creds = _start()

    async def work() -> list[Run]:
        result = await connection.client(creds).delete_runs(build_name_selector(names))
        return [Run.from_graphql(item, item.details) for item in result.delete_runs]

    return _bounded(work(), timeout)


def _single(runs: Coroutine[Any, Any, list[Run]], name: str) -> Coroutine[Any, Any, Run]:
    async def work() -> Run:
        found = [run for run in await runs if run.name == name]
        if not found:
            raise NotFoundError(404, f"Run {name} not found")
        return found[0]

    return work()


def stop_run(
    run: RunRef, *, reason: str | None = None, timeout: float | None = 10
) -> Coroutine[Any, Any, Run]:
    """Stop one run; raises NotFoundError when there is none."""
    name = _run_name(run)
    return _single(stop_runs([name], reason=reason, timeout=timeout), name)


def delete_run(run: RunRef, *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Delete one run; raises NotFoundError when there is none."""
    name = _run_name(run)
    return _single(delete_runs([name], timeout=timeout), name)


def update_run_metadata(
    run: RunRef, metadata: Mapping[str, Any], *, timeout: float | None = 10
) -> Coroutine[Any, Any, Run]:
    """Merge keys into a run's metadata (keys not given are kept)."""
    name = _run_name(run)
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise ValueError(f"metadata must be a mapping with string keys, got {metadata!r}")
    payload = dict(metadata)
    check_json_value(payload, "metadata")
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> Run:
        result = await connection.client(creds).update_run_metadata(
            build_name_selector([name]), UpdateRunMetadataInput(metadata=payload)
        )
        if not result.update_run_metadata:
            raise NotFoundError(404, f"Run {name} not found")
        updated = result.update_run_metadata[0]
        return Run.from_graphql(updated, updated.details)

    return _bounded(work(), timeout)


async def _done(value: T) -> T:
    return value


# --- logs -------------------------------------------------------------------------------------------------


def _log_input(
    name: str,
    *,
    follow: bool,
    rank: int | None,
    timestamps: bool,
    failed: bool,
    tail: int | None,
    resumption: int | None,
) -> dict[str, Any]:
    rank = _optional_index(rank, "rank must be a node rank")
    tail = _optional_index(tail, "tail must be a number of lines")
    resumption = _optional_index(resumption, "resumption must be an execution index")
    if failed and rank is not None:
        raise ValueError("failed=True picks the first failed rank; do not pass rank with it")
    log_input = GetRunLogsInput(
        name=name,
        follow=follow,
        failed=failed or None,
        nodeRank=rank,
        tail=tail,
        attemptIndex=resumption,
        timestamps=timestamps or None,
        offset=0,
    )
    return log_input.model_dump(by_alias=True, exclude_none=True)


async def _open_log_stream(
    creds: connection.Credentials, variables: dict[str, Any], *, lines: bool = True
) -> LogStream:
    api = connection.client(creds)
    rank = variables.get("nodeRank")

    async def chunks(resume: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
        async for message in api.get_run_logs(GetRunLogsInput.model_validate(resume)):
            yield message.get_run_logs_v_2.chunk, message.get_run_logs_v_2.end_offset

    # Subscribe at once and, meanwhile, look the run up (a Run object may be stale: deleted, or another user's),
    # so that a run that does not exist or a rank it lacks fails now rather than at first read, without paying
    # for the lookup and the subscription one after another.
    stream = LogStream(chunks, variables, lines=lines).start()
    try:
        known = await _fetch_run(api, variables["name"], False)
        if rank is not None and known.node_count and rank >= known.node_count:
            raise BadRequestError(
                400, f"Run {known.name} has no node rank {rank} (it has {known.node_count} nodes)"
            )
    except BaseException:
        await stream.aclose()
        raise
    return stream


def follow_run_logs(
    run: RunRef,
    rank: int | None = None,
    timestamps: bool = False,
    *,
    timeout: float | None = 10,
    tail: int | None = None,
    resumption: int | None = None,
) -> Coroutine[Any, Any, LogStream]:
    """Open a live stream of a run's log lines; `timeout` bounds opening it, not the follow.

    The stream is an async iterator of lines and an async context manager that unsubscribes on exit.
    """
    variables = _log_input(
        _run_name(run),
        follow=True,
        rank=rank,
        timestamps=bool(timestamps),
        failed=False,
        tail=tail,
        resumption=resumption,
    )
    timeout = _check_timeout(timeout)
    creds = _start()
    return _bounded(_open_log_stream(creds, variables), timeout)


def get_run_logs(
    run: RunRef,
    rank: int | None = None,
    timestamps: bool = False,
    *,
    timeout: float | None = 10,
    failed: bool = False,
    tail: int | None = None,
    resumption: int | None = None,
) -> Coroutine[Any, Any, str]:
    """The whole log as it is now, as one string; `timeout` bounds fetching all of it."""
    variables = _log_input(
        _run_name(run),
        follow=False,
        rank=rank,
        timestamps=bool(timestamps),
        failed=bool(failed),
        tail=tail,
        resumption=resumption,
    )
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> str:
        # One decoded piece per chunk (no base64 kept, no per-line strings): the peak is the pieces plus the
        # joined result, about twice the text.
        stream = await _open_log_stream(creds, variables, lines=False)
        parts: list[str] = []
        try:
            while (batch := await stream.next_batch()) is not None:
                parts.extend(batch)
        finally:
            await stream.aclose()
        return "".join(parts)

    return _bounded(work(), timeout)


def log_text_stream(
    run: RunRef,
    rank: int | None = None,
    timestamps: bool = False,
    *,
    timeout: float | None = 10,
    failed: bool = False,
    tail: int | None = None,
    resumption: int | None = None,
) -> Coroutine[Any, Any, LogStream]:
    """The log as it is now, as a stream of text pieces (one per chunk, not cut into lines), for copying out a
    log of any size in bounded memory; `timeout` bounds opening the stream, not reading it."""
    variables = _log_input(
        _run_name(run),
        follow=False,
        rank=rank,
        timestamps=bool(timestamps),
        failed=bool(failed),
        tail=tail,
        resumption=resumption,
    )
    timeout = _check_timeout(timeout)
    creds = _start()
    return _bounded(_open_log_stream(creds, variables, lines=False), timeout)


# --- status -----------------------------------------------------------------------------------------------


async def _statuses(api: MAPIClient, name: str) -> AsyncIterator[RunStatus]:
    """Each status of a run, resubscribing after a dropped connection (the server resends the current one)."""
    async for message in resubscribing(lambda: api.watch_run_status(WatchRunStatusInput(name=name))):
        yield RunStatus.from_string(message.watch_run_status.value)


async def _watch(creds: connection.Credentials, run: RunRef) -> AsyncGenerator[Run, None]:
    api = connection.client(creds)
    current = run if isinstance(run, Run) else await _fetch_run(api, run, False)
    async for status in _statuses(api, current.name):
        current = dataclasses.replace(current, status=status)
        yield current


def watch_run_status(run: RunRef) -> AsyncGenerator[Run, None]:
    """Yield a fresh Run at each status change, starting with the current status; ends after a terminal one."""
    _run_name(run)
    return _watch(_start(), run)


def _reached(status: RunStatus, target: RunStatus) -> bool:
    if status == target:
        return True
    if status in _FAILURE_STATUSES or target in _FAILURE_STATUSES:
        return False
    return status.after(target)


def wait_for_run_status(
    run: RunRef, status: RunStatus | str, *, timeout: float | None = None
) -> Coroutine[Any, Any, Run]:
    """Return the Run once it reaches `status` (or a later one); RunFailed if it ends first; TimeoutError after `timeout`."""
    name = _run_name(run)
    target = status if isinstance(status, RunStatus) else RunStatus.from_string(status)
    if target == RunStatus.UNKNOWN:
        raise ValueError(
            f"unknown run status {status!r}; expected one of {', '.join(s.value for s in RunStatus)}"
        )
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> Run:
        api = connection.client(creds)
        async for seen in _statuses(api, name):
            if _reached(seen, target):
                return await _fetch_run(api, name, True)
            if seen.is_terminal():
                break
        final = await _fetch_run(api, name, True)
        if _reached(final.status, target):
            return final
        raise RunFailed(final, f"Run {name} ended {final.status.value} before reaching {target.value}")

    return _bounded(work(), timeout)


# --- run scheduling settings ------------------------------------------------------------------------------


def _optional_bool(value: object, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{what} must be True, False or None, got {value!r}")
    return value


def update_run(
    run: RunRef,
    *,
    preemptible: bool | None = None,
    priority: str | None = None,
    max_retries: int | None = None,
    retry_on_system_failure: bool | None = None,
    max_duration: float | None = None,
    timeout: float | None = 10,
) -> Coroutine[Any, Any, Run]:
    """Change a run's scheduling settings; settings left as None keep their value.

    `max_duration` is in hours (sent as whole seconds); on a running run it moves the deadline, counted from when
    the current execution started. `max_retries` is how many times a failed execution is resumed.
    """
    name = _run_name(run)
    update = UpdateRunInput()
    if (value := _optional_bool(preemptible, "preemptible")) is not None:
        update.preemptible = value
    if (value := _optional_bool(retry_on_system_failure, "retry_on_system_failure")) is not None:
        update.retry_on_system_failure = value
    if priority is not None:
        if not isinstance(priority, str) or not priority.strip():
            raise ValueError(f"priority must be a non-empty string such as 'low', got {priority!r}")
        update.priority = priority.strip()
    if (retries := _optional_index(max_retries, "max_retries must be a number of retries")) is not None:
        update.max_retries = retries
    if max_duration is not None:
        if isinstance(max_duration, bool) or not isinstance(max_duration, int | float) or not max_duration > 0:
            raise ValueError(f"max_duration must be a positive number of hours, got {max_duration!r}")
        seconds = round(max_duration * 3600)
        if not 1 <= seconds <= MAX_DURATION_SECONDS:
            raise ValueError(
                f"max_duration must be from 1 second to {MAX_DURATION_SECONDS // 3600} hours, got {max_duration!r}"
            )
        update.max_duration_seconds = seconds
    if not update.model_fields_set:
        raise ValueError(
            "nothing to update: pass preemptible, priority, max_retries, retry_on_system_failure or max_duration"
        )
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> Run:
        result = await connection.client(creds).update_run(build_name_selector([name]), update)
        if not result.update_run:
            raise NotFoundError(404, f"Run {name} not found")
        updated = result.update_run[0]
        return Run.from_graphql(updated, updated.details)

    return _bounded(work(), timeout)


# Shortcuts `clone` accepts for compute and scheduling settings, as the 0.8.3 `Run.clone` does.
_CLONE_COMPUTE = ("cluster", "instance", "nodes", "gpu_type", "gpus", "cpus", "node_names")
_CLONE_SCHEDULING = ("priority", "preemptible", "max_retries", "retry_on_system_failure", "max_duration")
# Deprecated top-level spellings of compute settings, cleared when a clone changes compute.
_TOP_LEVEL_COMPUTE = ("cluster", "gpu_type", "gpu_num", "cpus")


def cloned_config(config: RunConfig, changes: Mapping[str, Any]) -> RunConfig:
    """`config` with `changes` applied: RunConfig fields, or the compute and scheduling shortcuts above.

    The name is dropped unless given, so that the server names the new run.
    """
    valid = (set(RunConfig.model_fields) - set(_TOP_LEVEL_COMPUTE)) | set(_CLONE_COMPUTE) | set(_CLONE_SCHEDULING)
    unknown = sorted(set(changes) - valid)
    if unknown:
        raise ValueError(f"clone() got unknown settings {', '.join(unknown)}; valid ones are {', '.join(sorted(valid))}")
    data = config.model_dump(exclude_none=True)
    data["name"] = None
    compute = {key: value for key, value in changes.items() if key in _CLONE_COMPUTE}
    scheduling = {key: value for key, value in changes.items() if key in _CLONE_SCHEDULING}
    data.update({key: value for key, value in changes.items() if key not in compute and key not in scheduling})
    if compute:
        for key in _TOP_LEVEL_COMPUTE:
            data.pop(key, None)
        data["compute"] = {**config.compute.model_dump(exclude_none=True), **compute}
    if scheduling:
        data["scheduling"] = {**config.scheduling.model_dump(exclude_none=True), **scheduling}
    return RunConfig.model_validate(data)


def clone_run(run: RunRef, *, timeout: float | None = 10, **changes: Any) -> Coroutine[Any, Any, Run]:
    """Launch a new run from a run's submitted config with `changes` applied (see `cloned_config`)."""
    name = _run_name(run)
    known = run.submitted_config if isinstance(run, Run) else None
    if known is not None:
        cloned_config(known, changes)  # bad changes fail now, before any request
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> Run:
        api = connection.client(creds)
        submitted = known or (await _fetch_run(api, name, True)).submitted_config
        if submitted is None:
            raise RunConfigError(f"Run {name} has no submitted config to clone")
        config = cloned_config(submitted, changes)
        config.validate_for_submit()
        return await _create(api, config.to_run_input())

    return _bounded(work(), timeout)


# --- clusters ---------------------------------------------------------------------------------------------


def get_clusters(
    clusters: Iterable[str | ClusterDetails] | str | None = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
) -> Coroutine[Any, Any, list[ClusterDetails]]:
    """The clusters runs can go to (all, or those named), with what is in use on them if `include_utilization`."""
    clusters_input = build_clusters_input(clusters)
    if not isinstance(include_utilization, bool):
        raise ValueError(f"include_utilization must be True or False, got {include_utilization!r}")
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> list[ClusterDetails]:
        result = await connection.client(creds).get_clusters(clusters_input, include_utilization)
        return [ClusterDetails.from_graphql(cluster) for cluster in result.get_clusters]

    return _bounded(work(), timeout)


def get_cluster(
    cluster: str | ClusterDetails, *, include_utilization: bool = True, timeout: float | None = 10
) -> Coroutine[Any, Any, ClusterDetails]:
    """One cluster by name, with what is in use on it unless `include_utilization=False`; NotFoundError if none."""
    name = cluster.name if isinstance(cluster, ClusterDetails) else cluster
    found = get_clusters([name], include_utilization=include_utilization, timeout=timeout)

    async def work() -> ClusterDetails:
        for item in await found:
            if item.name == name:
                return item
        raise NotFoundError(404, f"Cluster {name} not found")

    return work()
