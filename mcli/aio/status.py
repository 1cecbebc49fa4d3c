"""Run status: watched as it changes, or waited for (the async twins of `mcli.sdk.status`)."""

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any

from pydantic import ValidationError

import mcli.connection as connection
from mcli.aio._call import RunRef, _check_timeout, _request, _schema_error
from mcli.aio.runs import _fetch_run
from mcli.core.errors import CallTimeoutError, InvalidArgumentError, RunFailed
from mcli.core.retry import resubscribing
from mcli.filters import run_name
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import WatchRunStatusInput
from mcli.models import Run, RunStatus


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


def watch_run_status(run: RunRef, *, timeout: float | None = None) -> AsyncGenerator[Run, None]:
    """Watch a run's status change. The twin of `mcli.watch_run_status`.

    Args:
        run: As in `mcli.watch_run_status`.
        timeout: As in `mcli.watch_run_status`: seconds to wait for each next status (None: as long as it takes).

    Returns:
        An async generator of a fresh Run at each status change, starting with the current status; it ends after
        a terminal status.

    Raises:
        NotFoundError: No run has this name.
        CallTimeoutError: No next status came within `timeout` seconds (also a TimeoutError).
    """
    name = run_name(run)
    timeout = _check_timeout(timeout)
    updates = _watch(connection.credentials(), run)
    return updates if timeout is None else _each_within(updates, timeout, f"watch_run_status({name!r})")


async def _each_within(updates: AsyncGenerator[Run, None], timeout: float, what: str) -> AsyncGenerator[Run, None]:
    """`updates`, each within `timeout` seconds of the one before (of the start, for the first)."""
    try:
        while True:
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    update = await anext(updates)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if scope.expired():
                    raise CallTimeoutError(
                        f"{what} saw no status change within {timeout:g} s (timeout={timeout:g})"
                    ) from None
                raise
            yield update
    finally:
        await updates.aclose()


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
        raise InvalidArgumentError(
            "UNKNOWN cannot be waited for; pass one of " + ", ".join(RunStatus.known_values())
        )

    async def work(api: MAPIClient) -> Run:
        async for seen in _statuses(api, name):
            if _implies(seen, target):
                return await _fetch_run(api, name, True)
            if seen.is_terminal():
                break
        final = await _fetch_run(api, name, True)
        if _reached(final, target):
            return final
        why = f" ({final.reason})" if final.reason else ""  # the user's next question: why did it end?
        raise RunFailed(final, f"Run {name} ended {final.status.value}{why} without reaching {target.value}")

    return _request(f"wait_for_run_status({name!r}, {target.value!r})", timeout, work)
