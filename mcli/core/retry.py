"""Which failures are retried, and how long to wait between attempts."""

import random
from dataclasses import dataclass

# Statuses that mean "not processed, try again later". A GraphQL error is an answer, never retried.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which a request that is not safe to repeat is known not to have run.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts allowed in a row without progress, and the jittered exponential backoff between them."""

    max_attempts: int = 4
    initial_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


# Streams resubscribe after a drop; progress (a message received) refills their budget.
RECONNECT = RetryPolicy(max_attempts=8, initial_delay=0.05, max_delay=5.0)
