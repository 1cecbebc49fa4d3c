"""The async twin of `mcli.sdk`: the one implementation behind both.

Each function checks its arguments and the configuration when it is called (raising at once, before any request)
and returns an awaitable that does the network work; `mcli.sdk` runs those awaitables on its background loop.
The arguments and their meaning are the same as `mcli.sdk`'s, minus `future`.

Connections belong to the event loop that uses them and close when that loop ends (`asyncio.run(...)` cancels
every task before closing its loop, and mcli closes its connections then), so no "Unclosed client session" warning
appears. `await mcli.aio.aclose()` closes them earlier.
"""

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

import mcli.connection as connection
from mcli.core.errors import (
    BadRequestError,
    CallTimeoutError,
    InvalidArgumentError,
    MalformedResponseError,
    NotFoundError,
    OutcomeUnknownError,
    RunConfigException,
    RunFailed,
)
from mcli.core.retry import resubscribing
from mcli.filters import build_clusters_input, build_name_selector, build_runs_page_input, names_of, run_name
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import (
    CreateInteractiveRunInput,
    CreateRunInput,
    GetRunLogsInput,
    StopRunsInput,
    UpdateRunInput,
    UpdateRunMetadataInput,
    WatchRunStatusInput,
)
from mcli.logs import LogStream, OpeningLogStream
from mcli.models import Run, RunConfig, RunStatus
from mcli.models.cluster import ClusterDetails
from mcli.models.run_input import check_json_value
from mcli.paging import page_runs, runs_from_json, runs_page

T = TypeVar("T")

RunRef = str | Run
# A GraphQL Int (32-bit) of seconds.
MAX_DURATION_SECONDS = 2**31 - 1

__all__ = [
    "LogStream",
    "OpeningLogStream",
    "aclose",
    "clone_run",
    "create_run",
    "delete_run",
    "delete_runs",
    "follow_run_logs",
    "get_cluster",
    "get_clusters",
    "get_run",
    "get_run_logs",
    "get_runs",
    "log_text_stream",
    "start_run",
    "start_runs",
    "stop_run",
    "stop_runs",
    "update_run",
    "update_run_metadata",
    "wait_for_run_status",
    "watch_run_status",
]


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise InvalidArgumentError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return float(timeout)


def _optional_index(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{what} (an int >= 0), got {value!r}")
    return value


def _schema_error(what: str, error: ValidationError) -> MalformedResponseError:
    """A server reply that broke the schema, said in words: which call, which fields, what was wrong."""
    problems = [
        f"{'.'.join(str(part) for part in item['loc']) or 'the reply'}: {item['msg']}"
        for item in error.errors()[:3]
    ]
    more = f" (and {error.error_count() - 3} more)" if error.error_count() > 3 else ""
    return MalformedResponseError(
        500, f"the server's reply to {what} does not match the API schema: {'; '.join(problems)}{more}"
    )


def _request(
    what: str, timeout: float | None, work: Callable[[MAPIClient], Awaitable[T]]
) -> Coroutine[Any, Any, T]:
    """Check `timeout` and the configuration now; return the coroutine that runs `work` with this loop's client.

    The coroutine is bounded by `timeout` (its TimeoutError says what timed out and after how long), and a reply
    that breaks the schema becomes a MalformedResponseError naming `what`.
    """
    timeout = _check_timeout(timeout)
    creds = connection.credentials()

    async def bounded() -> T:
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await work(connection.client(creds))
        except TimeoutError:
            if scope.expired():
                raise CallTimeoutError(
                    f"{what} did not finish within {timeout:g} s (timeout={timeout:g})"
                ) from None
            raise
        except ValidationError as error:
            raise _schema_error(what, error) from None

    return bounded()


async def aclose() -> None:
    """Close this event loop's connections to the platform now.

    They also close by themselves when the loop ends (e.g. at the end of `asyncio.run(...)`); later calls on the
    loop open new ones.
    """
    await connection.close_sessions()


# --- runs -------------------------------------------------------------------------------------------------


def as_run_config(run: object) -> RunConfig:
    """A RunConfig from a RunConfig or a mapping of its fields.

    Raises:
        RunConfigException: `run` is neither, or the mapping is not a valid run config.
    """
    if isinstance(run, RunConfig):
        return run
    if isinstance(run, Mapping):
        return RunConfig.from_dict(run)
    raise RunConfigException(f"run must be a RunConfig or a mapping of its fields, got {type(run).__name__}")


def _check_it(name: str | None) -> str:
    if name:
        return f"check with mcli.get_runs([{name!r}]) before trying again"
    return "check the newest runs with mcli.get_runs(limit=5) before trying again"


def create_run(run: RunConfig | Mapping[str, Any], *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Launch a run. The async twin of `mcli.create_run`.

    Args:
        run: A RunConfig (or a mapping of its fields) with at least `image` and `command`.
        timeout: Seconds for the call, or None to wait as long as it takes.

    Returns:
        An awaitable of the launched Run.

    Raises:
        RunConfigException: The config is incomplete or invalid (at call time, before any request).
        InstanceTypeUnavailable: The requested compute can never be placed on the cluster.
        ConflictError: A run with this name exists; leave `name` unset or choose another.
        OutcomeUnknownError: The request was sent and the connection broke before the reply; it is never sent
            twice, and the message says how to check whether the run was created.
        TimeoutError: `timeout` passed; the message says so, and how to check whether the run was created.
    """
    config = as_run_config(run)
    config.validate_for_submit()
    run_input = config.to_run_input()
    name = config.name

    coroutine = _request("create_run", timeout, lambda api: _create(api, run_input, name))

    async def explained() -> Run:
        try:
            return await coroutine
        except TimeoutError as error:
            raise CallTimeoutError(f"{error}; the run may have been created: {_check_it(name)}") from None

    return explained()


def create_interactive_run(
    run: RunConfig | Mapping[str, Any], *, seconds: int | None = None, timeout: float | None = 10
) -> Coroutine[Any, Any, Run]:
    """Launch an interactive run: it sleeps for `seconds` (the server's default, an hour locally, when None),
    holding its compute. The async twin of `mcli.create_interactive_run`.

    Args:
        run: A RunConfig (or a mapping of its fields) with at least `image`; its command is replaced by the sleep.
        seconds: How long the run stays up.
        timeout: Seconds for the call, or None to wait as long as it takes.

    Returns:
        An awaitable of the launched Run (run type INTERACTIVE).

    Raises:
        RunConfigException: The config is invalid (at call time, before any request).
        ValueError: `seconds` is not a whole number from 1 to 2**31 - 1.
    """
    config = as_run_config(run)
    config.model_copy(update={"command": "sleep"}).validate_for_submit()  # any command is replaced by the sleep
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds < 2**31):
        raise ValueError(f"seconds must be a whole number of seconds from 1 to {2**31 - 1}, got {seconds!r}")
    create = CreateInteractiveRunInput(run_input=config.to_run_input())
    if seconds is not None:
        create.seconds = seconds

    async def work(api: MAPIClient) -> Run:
        result = await api.create_interactive_run(create)
        if not result.create_interactive_run:
            raise MalformedResponseError(500, "createInteractiveRun answered with an empty list instead of the new run")
        created = result.create_interactive_run[0]
        return Run.from_graphql(created, created.details)

    return _request("create_interactive_run", timeout, work)


async def _create(api: MAPIClient, run_input: dict[str, Any], name: str | None) -> Run:
    try:
        result = await api.create_run(CreateRunInput(run_input=run_input))
    except OutcomeUnknownError as error:
        raise OutcomeUnknownError(
            error.status,
            f"{error.message.partition('; whether')[0]}; whether the run was created is unknown, and createRun was "
            f"not sent again because that could create the run twice: {_check_it(name)}",
            request_id=error.request_id,
        ) from None
    if not result.create_run:
        raise MalformedResponseError(500, "createRun answered with an empty list instead of the new run")
    created = result.create_run[0]
    return Run.from_graphql(created, created.details)


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
    include_details: bool = True,
    include_deleted: bool = False,
    ended_before: Any = None,
    ended_after: Any = None,
    user_emails: Iterable[str] | None = None,
) -> Coroutine[Any, Any, list[Run]]:
    """Runs matching every given filter, newest first, with all their details. The twin of `mcli.get_runs`.

    Args:
        runs, cluster_names, before, after, gpu_types, gpu_nums, statuses, clusters: as `mcli.get_runs`.
        timeout: Seconds for the whole listing, every page included, or None.
        limit: At most this many runs (default: all, following pages).
        include_details: True (default) fills `config.image`, `config.command`, `submitted_config`, `nodes`,
            `lifecycle` and `metadata`; False is a cheaper listing without them.
        include_deleted: Include deleted runs.
        ended_before, ended_after: Bound when runs ended (runs that have not ended never match).
        user_emails: Whose runs (by default the caller's own).

    Returns:
        An awaitable of the list of Runs.

    Raises:
        ValueError: A filter value is invalid (at call time).
        MAPIException: The platform answered with an error or could not be reached.
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
    if not isinstance(include_details, bool):
        raise InvalidArgumentError(f"include_details must be True or False, got {include_details!r}")
    return _request("get_runs", timeout, lambda api: page_runs(api, page_input, include_details, limit))


async def _fetch_run(api: MAPIClient, name: str, include_details: bool) -> Run:
    page_input = build_runs_page_input(runs=[name], limit=1)
    page = await runs_page(api, page_input, include_details)
    if not page["runs"]:
        raise NotFoundError(404, f"Run {name} not found")
    return runs_from_json(page["runs"][:1])[0]


def get_run(
    run: RunRef, *, timeout: float | None = 10, include_details: bool = True
) -> Coroutine[Any, Any, Run]:
    """One run by name, with its details. The twin of `mcli.get_run`.

    Args:
        run, timeout, include_details: As in `mcli.get_run`; `timeout` bounds the awaitable (TimeoutError
            naming the call and the time).

    Returns:
        An awaitable of the Run.

    Raises:
        NotFoundError: No run has this name (a KubernetesException, 404).
    """
    name = run_name(run)
    return _request("get_run", timeout, lambda api: _fetch_run(api, name, include_details))


async def _existing(api: MAPIClient, names: list[str], action: str) -> None:
    """Raise NotFoundError naming every run in `names` that does not exist, before anything is changed."""
    found = await page_runs(api, build_runs_page_input(runs=names), False, None)
    missing = [name for name in names if name not in {run.name for run in found}]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise NotFoundError(
            404, f"no run named {listed}; nothing was {action} (check the names with mcli.get_runs())"
        )


def stop_runs(
    runs: Iterable[RunRef], *, reason: str | None = None, timeout: float | None = 10
) -> Coroutine[Any, Any, list[Run]]:
    """Stop runs. The twin of `mcli.stop_runs`; an empty list does nothing and sends nothing.

    Args:
        runs, reason, timeout: As in `mcli.stop_runs`; `timeout` bounds the awaitable (TimeoutError naming the
            call and the time).

    Returns:
        An awaitable of the Runs with their status right after the request (STOPPING or TERMINATING while their
        processes end; `wait_for_run_status(run, "STOPPED")` waits for the stop to finish).

    Raises:
        NotFoundError: A name matches no run; it is named, and no run was stopped.
    """
    names = names_of(runs, "runs")
    if reason is not None and not isinstance(reason, str):
        raise InvalidArgumentError(f"reason must be a string, got {reason!r}")
    if not names:
        _check_timeout(timeout)
        return _done([])

    async def work(api: MAPIClient) -> list[Run]:
        await _existing(api, names, "stopped")
        options = StopRunsInput(reason=reason) if reason else None
        result = await api.stop_runs(build_name_selector(names), options)
        return [Run.from_graphql(item, item.details) for item in result.stop_runs]

    return _request("stop_runs", timeout, work)


def delete_runs(runs: Iterable[RunRef], *, timeout: float | None = 10) -> Coroutine[Any, Any, list[Run]]:
    """Delete runs, stopping active ones first. The twin of `mcli.delete_runs`; an empty list sends nothing.

    Args:
        runs, timeout: As in `mcli.delete_runs`; `timeout` bounds the awaitable (TimeoutError naming the call
            and the time).

    Returns:
        An awaitable of the deleted Runs.

    Raises:
        NotFoundError: A name matches no run; it is named, and no run was deleted.
    """
    names = names_of(runs, "runs")
    if not names:
        _check_timeout(timeout)
        return _done([])

    async def work(api: MAPIClient) -> list[Run]:
        await _existing(api, names, "deleted")
        result = await api.delete_runs(build_name_selector(names))
        return [Run.from_graphql(item, item.details) for item in result.delete_runs]

    return _request("delete_runs", timeout, work)


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
    """Stop one run. The twin of `mcli.stop_run`.

    Args:
        run, reason, timeout: As in `mcli.stop_run`; `timeout` bounds the awaitable (TimeoutError naming the
            call and the time).

    Returns:
        An awaitable of the Run with its status right after the request (see `stop_runs`).

    Raises:
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    return _single(stop_runs([name], reason=reason, timeout=timeout), name)


def delete_run(run: RunRef, *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Delete one run. The twin of `mcli.delete_run`.

    Args:
        run, timeout: As in `mcli.delete_run`; `timeout` bounds the awaitable (TimeoutError naming the call
            and the time).

    Returns:
        An awaitable of the deleted Run.

    Raises:
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    return _single(delete_runs([name], timeout=timeout), name)


def update_run_metadata(
    run: RunRef, metadata: Mapping[str, Any], *, timeout: float | None = 10
) -> Coroutine[Any, Any, Run]:
    """Merge keys into a run's metadata (keys not given are kept). The twin of `mcli.update_run_metadata`.

    Args:
        run, metadata, timeout: As in `mcli.update_run_metadata`; `timeout` bounds the awaitable (TimeoutError
            naming the call and the time).

    Returns:
        An awaitable of the updated Run.

    Raises:
        ValueError: `metadata` is not a mapping of JSON values with string keys.
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise InvalidArgumentError(f"metadata must be a mapping with string keys, got {metadata!r}")
    payload = dict(metadata)
    check_json_value(payload, "metadata")

    async def work(api: MAPIClient) -> Run:
        result = await api.update_run_metadata(
            build_name_selector([name]), UpdateRunMetadataInput(metadata=payload)
        )
        if not result.update_run_metadata:
            raise NotFoundError(404, f"Run {name} not found")
        updated = result.update_run_metadata[0]
        return Run.from_graphql(updated, updated.details)

    return _request("update_run_metadata", timeout, work)


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
        raise InvalidArgumentError("failed=True picks the first failed rank; do not pass rank with it")
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


async def _open_log_stream(api: MAPIClient, variables: dict[str, Any], *, lines: bool = True) -> LogStream:
    rank = variables.get("nodeRank")

    async def chunks(resume: dict[str, Any]) -> AsyncIterator[tuple[str, int]]:
        try:
            async for message in api.get_run_logs(GetRunLogsInput.model_validate(resume)):
                yield message.get_run_logs_v_2.chunk, message.get_run_logs_v_2.end_offset
        except ValidationError as error:
            raise _schema_error("getRunLogsV2", error) from None

    # Following the latest resumption goes on with each later one until the run ends. Which one is followed is
    # known once the lookup below answers.
    followed_known = asyncio.Event()
    followed = 0

    async def next_resumption() -> dict[str, Any] | None:
        nonlocal followed
        await followed_known.wait()
        later = await _resumption_after(api, variables["name"], followed)
        if later is None:
            return None
        followed = later
        return {**{k: v for k, v in variables.items() if k != "tail"}, "attemptIndex": later, "offset": 0}

    chains = variables.get("follow") and variables.get("attemptIndex") is None

    # Subscribe at once and, meanwhile, look the run up (a Run object may be stale: deleted, or another user's),
    # so that a run that does not exist or a rank it lacks fails now rather than at first read, without paying
    # for the lookup and the subscription one after another.
    stream = LogStream(chunks, variables, lines=lines, then=next_resumption if chains else None).start()
    try:
        known = await _fetch_run(api, variables["name"], False)
        if rank is not None and known.node_count and rank >= known.node_count:
            raise BadRequestError(
                400, f"Run {known.name} has no node rank {rank} (it has {known.node_count} nodes)"
            )
        followed = known.latest_resumption.index if known.latest_resumption else 0
        followed_known.set()
    except BaseException:
        await stream.aclose()
        raise
    return stream


async def _resumption_after(api: MAPIClient, name: str, index: int) -> int | None:
    """Once resumption `index` has ended: the index of the run's next resumption, or None when the run ended."""

    async def settled() -> tuple[bool, int | None]:
        """(whether it is known yet, the next index or None)."""
        run = await _fetch_run(api, name, False)
        if run.latest_resumption is not None and run.latest_resumption.index > index:
            return True, index + 1
        return run.status.is_terminal(), None

    # Usually the run has already ended or moved on; otherwise wait for its next status change.
    known, later = await settled()
    if known:
        return later
    async for _status in _statuses(api, name):
        known, later = await settled()
        if known:
            return later
    return None


def follow_run_logs(
    run: RunRef,
    rank: int | None = None,
    timestamps: bool = False,
    *,
    timeout: float | None = 10,
    tail: int | None = None,
    resumption: int | None = None,
) -> OpeningLogStream:
    """Follow a run's log lines live. The twin of `mcli.follow_run_logs`.

    Use the result in any of three ways::

        async for line in mcli.aio.follow_run_logs(run): ...
        async with mcli.aio.follow_run_logs(run) as lines: ...
        lines = await mcli.aio.follow_run_logs(run)   # then `async for`, and `await lines.aclose()`

    Args:
        run: A run name or Run.
        rank: Node rank to read (default: the lowest).
        timestamps: Prefix each line with the time it was written (see `LogLine.from_line`).
        timeout: Seconds for opening the stream (not for following it), or None.
        tail: Start this many lines before the end.
        resumption: Read this execution of a restarted run (0-based).

    Returns:
        An OpeningLogStream: awaitable (giving a LogStream), async-iterable and an async context manager. Each
        line keeps its newline; the stream ends when the run has ended and every line was read.

    Raises:
        NotFoundError: No run has this name.
        BadRequestError: The run has no such rank.
    """
    variables = _log_input(
        run_name(run),
        follow=True,
        rank=rank,
        timestamps=bool(timestamps),
        failed=False,
        tail=tail,
        resumption=resumption,
    )
    return OpeningLogStream(
        _request("follow_run_logs", timeout, lambda api: _open_log_stream(api, variables))
    )


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
    """The whole log as it is now, as one string. The twin of `mcli.get_run_logs`; `timeout` bounds all of it.

    Args:
        run, rank, timestamps, timeout, failed, tail, resumption: As in `mcli.get_run_logs`; `timeout` bounds
            the awaitable (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the log text.

    Raises:
        NotFoundError: No run has this name.
        BadRequestError: The run has no such rank.
    """
    variables = _log_input(
        run_name(run),
        follow=False,
        rank=rank,
        timestamps=bool(timestamps),
        failed=bool(failed),
        tail=tail,
        resumption=resumption,
    )

    async def work(api: MAPIClient) -> str:
        # One decoded piece per chunk (no base64 kept, no per-line strings): the peak is the pieces plus the
        # joined result, about twice the text.
        stream = await _open_log_stream(api, variables, lines=False)
        parts: list[str] = []
        try:
            while (batch := await stream.next_batch()) is not None:
                parts.extend(batch)
        finally:
            await stream.aclose()
        return "".join(parts)

    return _request("get_run_logs", timeout, work)


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
    log of any size in bounded memory; `timeout` bounds opening the stream, not reading it.

    Args:
        run, rank, timestamps, timeout, failed, tail, resumption: As in the synchronous call; `timeout` bounds the awaitable (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the open LogStream (close it with `aclose()`).

    Raises:
        NotFoundError: No run has this name.
        BadRequestError: The run has no such rank.
    """
    variables = _log_input(
        run_name(run),
        follow=False,
        rank=rank,
        timestamps=bool(timestamps),
        failed=bool(failed),
        tail=tail,
        resumption=resumption,
    )
    return _request("log_text_stream", timeout, lambda api: _open_log_stream(api, variables, lines=False))


# --- status -----------------------------------------------------------------------------------------------


async def _statuses(api: MAPIClient, name: str) -> AsyncIterator[RunStatus]:
    """Each status of a run, resubscribing after a dropped connection (the server resends the current one)."""
    try:
        async for message in resubscribing(lambda: api.watch_run_status(WatchRunStatusInput(name=name))):
            yield RunStatus.from_string(message.watch_run_status.value)
    except ValidationError as error:
        raise _schema_error("watchRunStatus", error) from None


async def _watch(creds: connection.Credentials, run: RunRef) -> AsyncGenerator[Run, None]:
    api = connection.client(creds)
    current = run if isinstance(run, Run) else await _fetch_run(api, run, False)
    async for status in _statuses(api, current.name):
        if status.is_terminal():
            # The last Run is read whole: its reason and resumptions are those of how the run ended.
            current = await _fetch_run(api, current.name, False)
        current = dataclasses.replace(current, status=status)
        yield current


def watch_run_status(run: RunRef) -> AsyncGenerator[Run, None]:
    """Watch a run's status change. The twin of `mcli.watch_run_status`.

    Args:
        run: As in `mcli.watch_run_status`.

    Returns:
        An async generator of a fresh Run at each status change, starting with the current status; it ends after
        a terminal status.

    Raises:
        NotFoundError: No run has this name.
    """
    run_name(run)
    return _watch(connection.credentials(), run)


# Statuses a run passes through on its way to running; each implies the ones before it.
_PROGRESS = (RunStatus.PENDING, RunStatus.SCHEDULED, RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)


def _implies(status: RunStatus, target: RunStatus) -> bool:
    """Being at `status` proves the run reached `target`: a later step on the way to running, or completion."""
    if status == target:
        return True
    if target in _PROGRESS:
        return (status in _PROGRESS and status.after(target)) or status == RunStatus.COMPLETED
    return False


def _reached(run: Run, target: RunStatus) -> bool:
    """Whether `run` is at `target` or got there at some point, as its status and lifecycle show.

    A run that ran and then failed did reach RUNNING (its lifecycle lists it); a run stopped while queued never
    did. An ending (COMPLETED, STOPPED, FAILED, FAILED_PULL) is reached only by that ending itself.
    """
    return any(
        _implies(status, target) for status in (run.status, *(entry.status for entry in run.lifecycle))
    )


def wait_for_run_status(
    run: RunRef, status: RunStatus | str, *, timeout: float | None = None
) -> Coroutine[Any, Any, Run]:
    """The Run once it has reached `status`. The twin of `mcli.wait_for_run_status`.

    A status counts as reached if the run is at it, passed it on the way, or went through it before ending (read
    from its lifecycle): a run that ran and then failed did reach RUNNING.

    Args:
        run, status, timeout: As in `mcli.wait_for_run_status`; `timeout` bounds the awaitable (TimeoutError
            naming the call and the time).

    Returns:
        An awaitable of the Run, with its details.

    Raises:
        ValueError: `status` is not a run status (at call time).
        NotFoundError: No run has this name.
        RunFailed: The run ended without ever reaching `status`.
        TimeoutError: `timeout` passed first; the message names the run, the status and the time.
    """
    name = run_name(run)
    target = RunStatus(status)
    if target == RunStatus.UNKNOWN:
        raise InvalidArgumentError("UNKNOWN cannot be waited for; pass one of " + ", ".join(RunStatus.known_values()))

    async def work(api: MAPIClient) -> Run:
        async for seen in _statuses(api, name):
            if _implies(seen, target):
                return await _fetch_run(api, name, True)
            if seen.is_terminal():
                break
        final = await _fetch_run(api, name, True)
        if _reached(final, target):
            return final
        raise RunFailed(final, f"Run {name} ended {final.status.value} without reaching {target.value}")

    return _request(f"wait_for_run_status({name!r}, {target.value!r})", timeout, work)


# --- run scheduling settings ------------------------------------------------------------------------------


def _optional_bool(value: object, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be True, False or None, got {value!r}")
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
    """Change a run's scheduling settings; settings left as None keep their value. The twin of `mcli.update_run`.

    `max_duration` is in hours (sent as whole seconds); on a running run it moves the deadline, counted from when
    the current execution started. `max_retries` is how many times a failed execution is resumed.

    Args:
        run, preemptible, priority, max_retries, retry_on_system_failure, max_duration, timeout: As in
            `mcli.update_run`; `timeout` bounds the awaitable (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the updated Run.

    Raises:
        ValueError: Nothing to update, or a setting of the wrong type (at call time).
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    update = UpdateRunInput()
    if (value := _optional_bool(preemptible, "preemptible")) is not None:
        update.preemptible = value
    if (value := _optional_bool(retry_on_system_failure, "retry_on_system_failure")) is not None:
        update.retry_on_system_failure = value
    if priority is not None:
        if not isinstance(priority, str) or not priority.strip():
            raise InvalidArgumentError(f"priority must be a non-empty string such as 'low', got {priority!r}")
        update.priority = priority.strip()
    if (retries := _optional_index(max_retries, "max_retries must be a number of retries")) is not None:
        update.max_retries = retries
    if max_duration is not None:
        if (
            isinstance(max_duration, bool)
            or not isinstance(max_duration, int | float)
            or not max_duration > 0
        ):
            raise InvalidArgumentError(f"max_duration must be a positive number of hours, got {max_duration!r}")
        seconds = round(max_duration * 3600)
        if not 1 <= seconds <= MAX_DURATION_SECONDS:
            raise InvalidArgumentError(
                f"max_duration must be from 1 second to {MAX_DURATION_SECONDS // 3600} hours, got {max_duration!r}"
            )
        update.max_duration_seconds = seconds
    if not update.model_fields_set:
        raise InvalidArgumentError(
            "nothing to update: pass preemptible, priority, max_retries, retry_on_system_failure or max_duration"
        )

    async def work(api: MAPIClient) -> Run:
        result = await api.update_run(build_name_selector([name]), update)
        if not result.update_run:
            raise NotFoundError(404, f"Run {name} not found")
        updated = result.update_run[0]
        return Run.from_graphql(updated, updated.details)

    return _request("update_run", timeout, work)


def start_runs(runs: Iterable[RunRef], *, timeout: float | None = 10) -> Coroutine[Any, Any, list[Run]]:
    """Restart stopped or failed runs. The twin of `mcli.start_runs`; an empty list does nothing and sends nothing.

    Args:
        runs, timeout: As in `mcli.start_runs`; `timeout` bounds the awaitable (TimeoutError naming the call
            and the time).

    Returns:
        An awaitable of the Runs, each PENDING at the start of a new resumption.

    Raises:
        NotFoundError: A name matches no run; it is named, and no run was started.
        BadRequestError: A run is active or completed; none was started.
    """
    names = names_of(runs, "runs")
    if not names:
        _check_timeout(timeout)
        return _done([])

    async def work(api: MAPIClient) -> list[Run]:
        await _existing(api, names, "started")
        result = await api.start_runs(build_name_selector(names))
        return [Run.from_graphql(item, item.details) for item in result.start_runs]

    return _request("start_runs", timeout, work)


def start_run(run: RunRef, *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Restart one stopped or failed run as a new resumption. The twin of `mcli.start_run`.

    Args:
        run, timeout: As in `mcli.start_run`; `timeout` bounds the awaitable (TimeoutError naming the call and
            the time).

    Returns:
        An awaitable of the Run, PENDING at the start of a new resumption.

    Raises:
        NotFoundError: No run has this name.
        BadRequestError: The run is active or completed.
    """
    name = run_name(run)
    return _single(start_runs([name], timeout=timeout), name)


# Shortcuts `clone` accepts for compute and scheduling settings, as the 0.8.3 `Run.clone` does.
_CLONE_COMPUTE = ("cluster", "instance", "nodes", "gpu_type", "gpus", "cpus", "node_names")
_CLONE_SCHEDULING = ("priority", "preemptible", "max_retries", "retry_on_system_failure", "max_duration")
# Deprecated top-level spellings of compute settings, cleared when a clone changes compute.
_TOP_LEVEL_COMPUTE = ("cluster", "gpu_type", "gpu_num", "cpus")


def cloned_config(config: RunConfig, changes: Mapping[str, Any]) -> RunConfig:
    """`config` with `changes` applied: RunConfig fields, or the compute and scheduling shortcuts above.

    The name is dropped unless given, so that the server names the new run.
    """
    valid = (
        (set(RunConfig.model_fields) - set(_TOP_LEVEL_COMPUTE)) | set(_CLONE_COMPUTE) | set(_CLONE_SCHEDULING)
    )
    unknown = sorted(set(changes) - valid)
    if unknown:
        raise InvalidArgumentError(
            f"clone() got unknown settings {', '.join(unknown)}; valid ones are {', '.join(sorted(valid))}"
        )
    data = config.model_dump(exclude_none=True)
    data["name"] = None
    compute = {key: value for key, value in changes.items() if key in _CLONE_COMPUTE}
    scheduling = {key: value for key, value in changes.items() if key in _CLONE_SCHEDULING}
    data.update(
        {key: value for key, value in changes.items() if key not in compute and key not in scheduling}
    )
    if compute:
        for key in _TOP_LEVEL_COMPUTE:
            data.pop(key, None)
        data["compute"] = {**config.compute.model_dump(exclude_none=True), **compute}
    if scheduling:
        data["scheduling"] = {**config.scheduling.model_dump(exclude_none=True), **scheduling}
    return RunConfig.model_validate(data)


def clone_run(run: RunRef, *, timeout: float | None = 10, **changes: Any) -> Coroutine[Any, Any, Run]:
    """Launch a new run from a run's submitted config with `changes` applied (see `cloned_config`).

    Args:
        run, timeout: As in the synchronous call; `timeout` bounds the awaitable (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the new Run (named by the server unless `name` is among the changes).

    Raises:
        ValueError: An unknown setting among `changes`.
        NotFoundError: No run has this name.
        RunConfigException: The run has no submitted config, or the changed config is invalid.
    """
    name = run_name(run)
    known = run.submitted_config if isinstance(run, Run) else None
    if known is not None:
        cloned_config(known, changes)  # bad changes fail now, before any request

    async def work(api: MAPIClient) -> Run:
        submitted = known or (await _fetch_run(api, name, True)).submitted_config
        if submitted is None:
            raise RunConfigException(f"Run {name} has no submitted config to clone")
        config = cloned_config(submitted, changes)
        config.validate_for_submit()
        return await _create(api, config.to_run_input(), config.name)

    return _request("clone_run", timeout, work)


# --- clusters ---------------------------------------------------------------------------------------------


def get_clusters(
    clusters: Iterable[str | ClusterDetails] | str | None = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
) -> Coroutine[Any, Any, list[ClusterDetails]]:
    """The clusters runs can go to (all, or those named), with what is in use on them if `include_utilization`.

    Args:
        clusters, include_utilization, timeout: As in `mcli.get_clusters`; `timeout` bounds the awaitable
            (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the list of ClusterDetails.

    Raises:
        ValueError: A bad cluster name or flag (at call time).
    """
    clusters_input = build_clusters_input(clusters)
    if not isinstance(include_utilization, bool):
        raise InvalidArgumentError(f"include_utilization must be True or False, got {include_utilization!r}")

    async def work(api: MAPIClient) -> list[ClusterDetails]:
        result = await api.get_clusters(clusters_input, include_utilization)
        return [ClusterDetails.from_graphql(cluster) for cluster in result.get_clusters]

    return _request("get_clusters", timeout, work)


def get_cluster(
    cluster: str | ClusterDetails, *, include_utilization: bool = True, timeout: float | None = 10
) -> Coroutine[Any, Any, ClusterDetails]:
    """One cluster by name, with what is in use on it unless `include_utilization=False`.

    Args:
        cluster, include_utilization, timeout: As in `mcli.get_cluster`; `timeout` bounds the awaitable
            (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the ClusterDetails.

    Raises:
        NotFoundError: No cluster has this name.
    """
    name = cluster.name if isinstance(cluster, ClusterDetails) else cluster
    found = get_clusters([name], include_utilization=include_utilization, timeout=timeout)

    async def work() -> ClusterDetails:
        for item in await found:
            if item.name == name:
                return item
        raise NotFoundError(404, f"Cluster {name} not found")

    return work()
