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
from mcli.filters import build_name_selector, build_runs_page_input
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import (
    CreateRunInput,
    GetRunLogsInput,
    StopRunsInput,
    UpdateRunMetadataInput,
    WatchRunStatusInput,
)
from mcli.logs import LogStream
from mcli.models import Run, RunConfig, RunConfigError, RunStatus
from mcli.models.run_config import check_json_value

T = TypeVar("T")

RunRef = str | Run
PAGE_SIZE = 500
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
        result = await connection.client(creds).create_run(CreateRunInput(run_input=run_input))
        created = result.create_run[0]
        return Run.from_graphql(created, created.details)

    return _bounded(work(), timeout)


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


async def _page_runs(api: MAPIClient, page_input: Any, include_details: bool, limit: int | None) -> list[Run]:
    """Follow the cursor; the next page is requested before this one is converted, so server and client overlap."""

    async def fetch(request: Any, have: int) -> Any:
        wanted = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - have)
        result = await api.get_runs_paginated(request.model_copy(update={"limit": wanted}), include_details)
        return result.get_runs_paginated

    runs: list[Run] = []
    seen_cursors: set[str] = set()
    pending: asyncio.Task[Any] | None = asyncio.ensure_future(fetch(page_input, 0))
    try:
        with _gc_paused():
            while pending is not None:
                page = await pending
                pending = None
                have = len(runs) + len(page.runs)
                if page.has_next_page and page.cursor and (limit is None or have < limit):
                    if page.cursor in seen_cursors:
                        raise APIConnectionError(
                            502, "the server returned the same page cursor twice; stopping"
                        )
                    seen_cursors.add(page.cursor)
                    next_page = page_input.model_copy(update={"cursor": page.cursor})
                    pending = asyncio.ensure_future(fetch(next_page, have))
                # Convert in slices, yielding between them, so the next request goes out while this page converts.
                for start in range(0, len(page.runs), CONVERT_SLICE):
                    await asyncio.sleep(0)
                    runs.extend(
                        Run.from_graphql(item, item.details)
                        for item in page.runs[start : start + CONVERT_SLICE]
                    )
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
) -> Coroutine[Any, Any, list[Run]]:
    """Runs matching every given filter, newest first; pages are followed until `limit` (default: all)."""
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
    )
    timeout = _check_timeout(timeout)
    creds = _start()

    async def work() -> list[Run]:
        return await _page_runs(connection.client(creds), page_input, include_details, limit)

    return _bounded(work(), timeout)


async def _fetch_run(api: MAPIClient, name: str, include_details: bool) -> Run:
    page_input = build_runs_page_input(runs=[name], limit=1)
    page = (await api.get_runs_paginated(page_input, include_details)).get_runs_paginated
    if not page.runs:
        raise NotFoundError(404, f"Run {name} not found")
    return Run.from_graphql(page.runs[0], page.runs[0].details)


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


async def _open_log_stream(creds: connection.Credentials, variables: dict[str, Any]) -> LogStream:
    api = connection.client(creds)
    rank = variables.get("nodeRank")

    async def chunks(resume: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
        async for message in api.get_run_logs(GetRunLogsInput.model_validate(resume)):
            yield message.get_run_logs_v_2.chunk, message.get_run_logs_v_2.end_offset

    # Subscribe at once and, meanwhile, look the run up (a Run object may be stale: deleted, or another user's),
    # so that a run that does not exist or a rank it lacks fails now rather than at first read, without paying
    # for the lookup and the subscription one after another.
    stream = LogStream(chunks, variables).start()
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
        stream = await _open_log_stream(creds, variables)
        parts: list[str] = []
        try:
            while (batch := await stream.next_batch()) is not None:
                parts.extend(batch)
        finally:
            await stream.aclose()
        return "".join(parts)

    return _bounded(work(), timeout)


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
