"""The pure decisions of the protections: backoff waits and breaker transitions."""

from __future__ import annotations

import random

import pytest

from nexus_llm.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    OverloadedError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
)
from nexus_llm.protect.backoff import RetryPolicy
from nexus_llm.protect.breaker import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    counts_against_breaker,
)
from nexus_llm.state import MemoryStore


def err(cls: type[ProviderError], retry_after_s: float | None = None) -> ProviderError:
    return cls("boom", provider="gemini", status=503, retry_after_s=retry_after_s)


class TestRetryPolicy:
    def test_full_jitter_stays_under_the_growing_ceiling(self) -> None:
        """Each wait is uniform in [0, min(cap, base * 2**(n-1))]."""
        policy = RetryPolicy(max_attempts=10, base_s=0.5, max_delay_s=4.0, deadline_s=1e9)
        rng = random.Random(1)
        for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 4.0)]:
            waits = [
                policy.next_wait(err(OverloadedError), attempt=attempt, elapsed_s=0, rng=rng)
                for _ in range(200)
            ]
            assert all(w is not None and 0 <= w <= ceiling for w in waits)
            assert max(w for w in waits if w is not None) > ceiling * 0.8  # it does spread

    def test_hint_is_a_floor(self) -> None:
        """A Retry-After larger than the jitter is waited for in full."""
        policy = RetryPolicy(base_s=0.1, max_delay_s=10)
        wait = policy.next_wait(err(RateLimitError, 2.5), attempt=1, elapsed_s=0)
        assert wait == 2.5

    def test_hint_above_the_cap_gives_up(self) -> None:
        """A hint longer than the retry cap is not waited for: fail over instead."""
        policy = RetryPolicy(max_delay_s=5)
        assert policy.next_wait(err(RateLimitError, 40), attempt=1, elapsed_s=0) is None

    @pytest.mark.parametrize(
        "cls", [AuthenticationError, BadRequestError, NotFoundError, QuotaExhaustedError]
    )
    def test_non_retryable_errors_are_not_retried(self, cls: type[ProviderError]) -> None:
        """Errors retrying cannot fix get no wait at all."""
        assert RetryPolicy().next_wait(err(cls), attempt=1, elapsed_s=0) is None

    def test_attempts_and_deadline_bound_the_retries(self) -> None:
        """No wait after the last attempt, nor one that would pass the deadline."""
        policy = RetryPolicy(max_attempts=2, base_s=1, deadline_s=10)
        assert policy.next_wait(err(ProviderTimeoutError), attempt=2, elapsed_s=0) is None
        assert policy.next_wait(err(ProviderTimeoutError, 3), attempt=1, elapsed_s=8) is None
        assert policy.next_wait(err(ProviderTimeoutError, 3), attempt=1, elapsed_s=1) == 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**config: float) -> tuple[CircuitBreaker, Clock, list[tuple[str, dict[str, object]]]]:
    clock = Clock()
    seen: list[tuple[str, dict[str, object]]] = []
    made = CircuitBreaker(
        MemoryStore(clock=clock),
        "gemini",
        BreakerConfig(**config),  # type: ignore[arg-type]
        on_transition=lambda event, fields: seen.append((event, fields)),
        clock=clock,
    )
    return made, clock, seen


class TestBreaker:
    def test_consecutive_failures_open_it(self) -> None:
        """The threshold-th consecutive failure opens the breaker, once."""
        b, _, seen = breaker(failure_threshold=3)
        for _ in range(2):
            b.record_failure("timeout")
        assert b.admit()[0] == "allowed"
        b.record_failure("timeout")
        assert b.admit()[0] == "denied"
        assert [e for e, _ in seen] == ["breaker_open"]

    def test_a_success_resets_the_streak(self) -> None:
        """Failures must be consecutive: a success in between starts over."""
        b, _, _ = breaker(failure_threshold=3)
        b.record_failure("timeout")
        b.record_failure("timeout")
        b.record_success()
        b.record_failure("timeout")
        assert b.current().state == "closed"

    def test_failure_rate_opens_it(self) -> None:
        """Half the calls failing, over at least the minimum number of calls, opens it."""
        b, _, seen = breaker(failure_threshold=100, failure_rate=0.5, min_calls=10, window_s=60)
        for n in range(10):
            if n % 2 == 0:
                b.record_failure("server")
            else:
                b.record_success()
        assert b.current().state == "closed"  # 10 calls, but the last one succeeded
        b.record_failure("server")  # 6 of 11
        assert b.current().state == "open"
        assert "failure rate" in str(seen[0][1]["reason"])

    def test_the_window_forgets_old_failures(self) -> None:
        """Failures older than the window do not count towards the rate."""
        b, clock, _ = breaker(failure_threshold=100, failure_rate=0.5, min_calls=4, window_s=10)
        b.record_failure("server")
        b.record_failure("server")
        clock.now += 11
        for _ in range(3):
            b.record_success()
        b.record_failure("server")
        assert b.current().state == "closed"

    def test_cooldown_probe_and_close(self) -> None:
        """After the cooldown one probe is admitted; its success closes the breaker."""
        b, clock, seen = breaker(failure_threshold=1, cooldown_s=30, half_open_probes=1)
        b.record_failure("auth")
        clock.now += 29
        assert b.admit()[0] == "denied"
        clock.now += 2
        assert b.admit()[0] == "probe"
        assert b.admit()[0] == "denied"  # one probe at a time
        b.record_success()
        assert b.admit()[0] == "allowed"
        assert [e for e, _ in seen] == ["breaker_open", "breaker_half_open", "breaker_closed"]
        assert seen[-1][1]["open_duration_s"] == pytest.approx(31)

    def test_happy_path_writes_nothing(self) -> None:
        """A success with nothing to forget leaves the store untouched."""
        b, _, _ = breaker()
        b.record_success()
        assert b._store.get("breaker:gemini") is None

    def test_unreadable_state_starts_closed(self) -> None:
        """Garbage in the store never wedges the breaker."""
        assert BreakerState.decode(b"not json").state == "closed"
        assert BreakerState.decode(b'{"unknown": 1}').state == "closed"

    @pytest.mark.parametrize(
        ("cls", "counts"),
        [
            (AuthenticationError, True),
            (ProviderTimeoutError, True),
            (OverloadedError, True),
            (RateLimitError, True),
            (BadRequestError, False),
            (NotFoundError, False),
        ],
    )
    def test_which_errors_count(self, cls: type[ProviderError], counts: bool) -> None:
        """Provider-side faults count; the request's own faults do not."""
        assert counts_against_breaker(err(cls)) is counts
