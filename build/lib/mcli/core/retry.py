"""Which failures are retried, and how long to wait between attempts: one decision, `retry_delay`.

Like githubkit's RetryChainDecision, the decision is a function of the failure and the attempt number, returning
how long to wait or None to give up; the request loop and the stream reconnect loop both ask it.
"""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from mcli.core.errors import APIConnectionError, MAPIException

T = TypeVar("T")

# Our own generator: jitter must not consume (or reseed-check) the global `random` state that the caller's code
# and tools such as hypothesis own.
_jitter = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts allowed in a row without progress, and the jittered exponential backoff between them.

    Attributes:
        max_attempts: Attempts in all, the first included.
        initial_delay: The backoff ceiling before the second attempt, in seconds; it doubles per attempt.
        max_delay: The largest backoff ceiling, in seconds.
        max_retry_after: The longest server-requested wait (Retry-After) honoured, in seconds; a longer one is cut
            to this, so a misbehaving server cannot park a call for hours.
    """

    max_attempts: int = 4
    initial_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int) -> float:
        """An "equal jitter" exponential backoff before retry number `attempt` (1-based).

        The ceiling doubles each attempt up to `max_delay`; the wait is uniform between half the ceiling and the
        ceiling, so retries spread out but never come back at once.
        """
        ceiling = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        return _jitter.uniform(ceiling / 2, ceiling)


# Requests: four attempts within a few seconds.
REQUESTS = RetryPolicy()
# Streams resubscribe after a drop; progress (a message received) refills their budget.
RECONNECT = RetryPolicy(max_attempts=8, initial_delay=0.05, max_delay=5.0)


def retry_delay(
    error: BaseException, attempt: int, safe_to_repeat: bool, policy: RetryPolicy = REQUESTS
) -> float | None:
    """Seconds to wait before trying again after `error` on attempt number `attempt` (1-based), or None to give up.

    Args:
        error: The failure of the attempt.
        attempt: How many attempts failed so far, this one included.
        safe_to_repeat: Whether sending the request again cannot do anything twice (a query, or an idempotent
            mutation). A request that is not safe is repeated only when the failure proves it never ran.
        policy: The attempt budget and backoff.

    Returns:
        None when the error is an answer (a GraphQL error, a 4xx), the budget is spent, or the request may have run
        and is not safe to repeat; otherwise the backoff delay, or the server's Retry-After when longer (capped at
        `policy.max_retry_after`).
    """
    if attempt >= policy.max_attempts or not isinstance(error, MAPIException) or not error.transient:
        return None
    if error.may_have_run and not safe_to_repeat:
        return None
    delay = policy.delay(attempt)
    if error.retry_after is not None:
        delay = max(delay, min(error.retry_after, policy.max_retry_after))
    return delay


async def resubscribing(
    open_stream: Callable[[], AsyncIterator[T]], policy: RetryPolicy = RECONNECT
) -> AsyncIterator[T]:
    """The items of a subscription, reopened with `open_stream()` after a dropped connection.

    `open_stream` decides where the new subscription resumes, so reopening is always safe. Only transient failures
    are retried (`retry_delay`); any item received refills the budget, so a long stream survives sporadic drops.
    """
    failures = 0
    while True:
        try:
            async for item in open_stream():
                failures = 0
                yield item
            return
        except APIConnectionError as error:
            failures += 1
            delay = retry_delay(error, failures, safe_to_repeat=True, policy=policy)
            if delay is None:
                raise
            await asyncio.sleep(delay)
