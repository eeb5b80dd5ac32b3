"""Retry with exponential backoff and full jitter, bounded by attempts and a deadline.

Pure decisions, no sleeping: the pipeline asks `next_wait()` and yields a `Sleep` effect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import ProviderError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` counts the first try. Waits: full jitter over `base_s * 2**(n-1)`,
    capped at `max_delay_s`; a provider hint (Retry-After, RetryInfo) is a floor, not a cap."""

    max_attempts: int = 3
    base_s: float = 0.5
    max_delay_s: float = 20.0
    deadline_s: float = 60.0

    def next_wait(
        self,
        error: ProviderError,
        *,
        attempt: int,
        elapsed_s: float,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when not to retry."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        ceiling = min(self.max_delay_s, self.base_s * 2 ** (attempt - 1))
        wait = (rng or random).uniform(0.0, ceiling)
        if error.retry_after_s is not None:
            # The provider knows when capacity returns; waiting less only earns another 429.
            wait = max(wait, error.retry_after_s)
        if wait > self.max_delay_s and error.retry_after_s is not None:
            return None  # the hint exceeds what we are willing to wait: fail over instead
        if elapsed_s + wait >= self.deadline_s:
            return None
        return wait
