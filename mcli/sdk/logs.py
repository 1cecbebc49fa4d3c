"""Run logs: the whole text now, or followed live (`mcli.aio.logs` is the twin)."""

import concurrent.futures
from collections.abc import Generator
from typing import Literal, overload

from mcli.core import loop
from mcli.logs import LogStream
from mcli.models import Run
from mcli.sdk._call import _aio, _dispatch


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
    """Lines (or text pieces) of an open stream. Closing the generator unsubscribes.

    The next batch is asked for before this one's lines are handed out, so the loop fetches it while the caller
    works through them: the caller rarely waits for the loop thread to wake up (about 70 us a hop, and a follow of
    200,000 lines takes some twenty-five hops).
    """
    ahead: concurrent.futures.Future[list[str] | None] | None = None
    try:
        ahead = loop.submit(stream.next_batch())
        while (batch := ahead.result()) is not None:
            ahead = loop.submit(stream.next_batch())
            yield from batch
    finally:
        if ahead is not None:
            ahead.cancel()  # a batch asked for and no longer wanted (the generator was closed, or interrupted)
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
    follow: bool = False,
) -> Generator[str, None, None]:
    """The log in text pieces as they arrive (not cut into lines)

    A caller copying it out holds a few chunks at a time (`mcli logs` uses it, with and without `--follow`).

    Args:
        run, rank, timestamps, failed, tail, resumption: As in `get_run_logs`.
        timeout (Optional[float]): Seconds for opening the stream (not for reading it); else TimeoutError.
        follow (bool): Go on until the run ends, as `follow_run_logs` does, instead of stopping at the log as
            it is now.

    Returns:
        Generator[str]: The text pieces; `"".join(...)` is the log.

    Raises:
        KubernetesException (HTTPStatus.NOT_FOUND): Raised if the requested run does not exist.
        KubernetesException (HTTPStatus.BAD_REQUEST): Raised if the run does not have a node of the requested rank.
    """
    opening = _aio.log_text_stream(
        run, rank, timestamps, timeout=timeout, failed=failed, tail=tail, resumption=resumption, follow=follow
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

    async def opened() -> Generator[str, None, None]:
        return _lines(await opening.open())

    # Cancelling the Future cancels the opening (nothing is left subscribed).
    return loop.submit(opened())
