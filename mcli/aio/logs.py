"""Run logs: the whole text now, or followed live across a run's resumptions (the async twins of
`mcli.sdk.logs`).
"""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from pydantic import ValidationError

from mcli.aio._call import RunRef, _optional_index, _request, _schema_error
from mcli.aio.runs import _fetch_run
from mcli.aio.status import _statuses
from mcli.core.errors import BadRequestError, InvalidArgumentError
from mcli.filters import run_name
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import GetRunLogsInput
from mcli.logs import LogStream, OpeningLogStream


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
    # A run that had already ended when the stream opened ends with the log being read: no need to ask again
    # whether it went on (following a restart made after that is a new follow).
    ended_at_open = False

    async def next_resumption() -> dict[str, Any] | None:
        nonlocal followed
        await followed_known.wait()
        if ended_at_open:
            return None
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
        ended_at_open = known.status.is_terminal()
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
    follow: bool = False,
) -> Coroutine[Any, Any, LogStream]:
    """The log as a stream of text pieces (one per chunk, not cut into lines), for copying out a log of any size
    in bounded memory; `timeout` bounds opening the stream, not reading it.

    Args:
        run, rank, timestamps, timeout, failed, tail, resumption: As in the synchronous call; `timeout` bounds the awaitable (TimeoutError naming the call and the time).
        follow: Go on until the run ends, as `follow_run_logs` does, instead of stopping at the log as it is now.

    Returns:
        An awaitable of the open LogStream (close it with `aclose()`).

    Raises:
        NotFoundError: No run has this name.
        BadRequestError: The run has no such rank.
    """
    variables = _log_input(
        run_name(run),
        follow=follow,
        rank=rank,
        timestamps=bool(timestamps),
        failed=bool(failed),
        tail=tail,
        resumption=resumption,
    )
    return _request("log_text_stream", timeout, lambda api: _open_log_stream(api, variables, lines=False))
