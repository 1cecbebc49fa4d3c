"""How every `mcli.aio` call runs: its arguments checked when it is called, the network work in a
coroutine bounded by `timeout`, a reply that breaks the schema said in words.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from pydantic import ValidationError

import mcli.connection as connection
from mcli.core.errors import CallTimeoutError, InvalidArgumentError, MalformedResponseError, NotFoundError
from mcli.graphql.generated.client import MAPIClient
from mcli.models import Run

T = TypeVar("T")


RunRef = str | Run


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


def _single(runs: Coroutine[Any, Any, list[Run]], name: str) -> Coroutine[Any, Any, Run]:
    async def work() -> Run:
        found = [run for run in await runs if run.name == name]
        if not found:
            raise NotFoundError(404, f"Run {name} not found")
        return found[0]

    return work()


async def _done(value: T) -> T:
    return value
