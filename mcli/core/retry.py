"""Which failures are retried, and how long to wait between attempts."""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from mcli.core.errors import APIConnectionError

T = TypeVar("T")

# Statuses that mean "not processed, try again later". A GraphQL error is an answer, never retried.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which a request that is not safe to repeat is known not to have run.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
# Our own generator: jitter must not consume (or reseed-check) the global `random` state that the caller's code
# and tools such as hypothesis own.
_jitter = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts allowed in a row without progress, and the jittered exponential backoff between them."""

    max_attempts: int = 4
    initial_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        return _jitter.uniform(ceiling / 2, ceiling)


# Streams resubscribe after a drop; progress (a message received) refills their budget.
RECONNECT = RetryPolicy(max_attempts=8, initial_delay=0.05, max_delay=5.0)


async def resubscribing(
    open_stream: Callable[[], AsyncIterator[T]], policy: RetryPolicy = RECONNECT
) -> AsyncIterator[T]:
    """The items of a subscription, reopened with `open_stream()` after a dropped connection.

    `open_stream` decides where the new subscription resumes. Only connection failures are retried; any item
    received refills the budget, so a long stream survives sporadic drops.
    """
    failures = 0
    while True:
        try:
            async for item in open_stream():
                failures = 0
                yield item
            return
        except APIConnectionError:
            failures += 1
            if failures >= policy.max_attempts:
                raise
            await asyncio.sleep(policy.delay(failures))
