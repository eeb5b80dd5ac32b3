"""A circuit breaker per provider, its state shared through the store by every process.

closed ──(consecutive failures ≥ threshold, or failure rate ≥ rate over ≥ min calls)──► open
open ──(cooldown passed; the next caller becomes a probe)──► half_open
half_open ──(probe succeeds)──► closed      half_open ──(probe fails)──► open

Every transition is one compare-and-swap on one key, so among many processes exactly one
makes it and reports it. A probe whose process died never blocks recovery: a probe slot
expires after `probe_timeout_s` and the next caller probes instead — the breaker cannot stay
open after the provider recovers.

Writes stay off the happy path: a success in the closed state writes nothing unless there
were failures to forget, so the failure rate is measured over the calls since the window's
first failure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Final, Literal, NamedTuple

from ..errors import BadRequestError, NotFoundError, ProviderError
from ..state import StateStore

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUES: Final = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}  # the gauge's encoding
_CAS_TRIES = 16


class Admission(NamedTuple):
    """Whether a call may go to the provider, why not, and whether a success needs recording.

    `clean` is True when the breaker was closed with no failure to forget: a success then needs
    neither a write nor even a read. (A failure recorded meanwhile by another process keeps its
    streak a little longer — the conservative side.)
    """

    kind: Literal["allowed", "probe", "denied"]
    why: str = ""
    clean: bool = False


_ALLOWED_CLEAN = Admission("allowed", "", True)


TransitionSink = Callable[[str, dict[str, object]], None]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5
    failure_rate: float = 0.5
    min_calls: int = 20
    window_s: float = 60.0
    cooldown_s: float = 30.0
    half_open_probes: int = 1
    probe_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class BreakerState:
    state: str = CLOSED
    failures: int = 0  # consecutive
    window_calls: int = 0
    window_failures: int = 0
    window_start: float = 0.0
    open_until: float = 0.0
    opened_at: float = 0.0
    probes: int = 0
    probe_deadline: float = 0.0
    reason: str = ""

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> BreakerState:
        if raw is None:
            return cls()
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError):
            return cls()  # unreadable state must not wedge the breaker: start closed


def counts_against_breaker(error: ProviderError) -> bool:
    """A fault of the provider or the path to it — not of the request we sent."""
    return not isinstance(error, BadRequestError | NotFoundError)


class CircuitBreaker:
    def __init__(
        self,
        store: StateStore,
        provider: str,
        config: BreakerConfig,
        *,
        on_transition: TransitionSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self._store = store
        self._key = f"breaker:{provider}"
        self._config = config
        self._emit = on_transition
        self._clock = clock
        self._last: tuple[bytes | None, BreakerState] = (None, BreakerState())

    def _decode(self, raw: bytes) -> BreakerState:
        """`BreakerState.decode`, remembering the last answer: the state read on every call is
        almost always the one read on the call before."""
        last_raw, last_state = self._last
        if raw == last_raw:
            return last_state
        state = BreakerState.decode(raw)
        self._last = (raw, state)
        return state

    def current(self) -> BreakerState:
        return BreakerState.decode(self._store.get(self._key))

    def admit(self) -> Admission:
        """Whether a call may go to the provider now; the second item says why not."""
        for _ in range(_CAS_TRIES):
            raw = self._store.get(self._key)
            if raw is None:
                return _ALLOWED_CLEAN  # never written, or reset: closed, nothing to forget
            st = self._decode(raw)
            now = self._clock()
            if st.state == CLOSED:
                return Admission("allowed", "", st.failures == 0 and st.window_failures == 0)
            if st.state == OPEN:
                if now < st.open_until:
                    return Admission(
                        "denied", f"breaker open for {st.open_until - now:.0f}s more ({st.reason})"
                    )
                new = replace(
                    st, state=HALF_OPEN, probes=1, probe_deadline=now + self._config.probe_timeout_s
                )
                if self._swap(raw, new):
                    self._emit(
                        "breaker_half_open", {"reason": "cooldown passed", **self._age(st, now)}
                    )
                    return Admission("probe")
                continue
            stale = now >= st.probe_deadline
            if st.probes < self._config.half_open_probes or stale:
                new = replace(
                    st,
                    probes=1 if stale else st.probes + 1,
                    probe_deadline=now + self._config.probe_timeout_s,
                )
                if self._swap(raw, new):
                    return Admission("probe")
                continue
            return Admission("denied", "breaker half-open: a probe call is in flight")
        return Admission("denied", "breaker state is contended; try again")

    def record_success(self) -> None:
        for _ in range(_CAS_TRIES):
            raw = self._store.get(self._key)
            st = BreakerState.decode(raw)
            if st.state == OPEN:
                return  # a call admitted before the breaker opened; the probe decides
            if st.state == HALF_OPEN:
                if self._swap(raw, BreakerState()):
                    self._emit(
                        "breaker_closed",
                        {"reason": "probe succeeded", **self._age(st, self._clock())},
                    )
                    return
                continue
            if st.failures == 0 and st.window_failures == 0:
                return  # nothing to forget: no write on the happy path
            now = self._clock()
            new = self._rolled(st, now)
            new = replace(new, failures=0, window_calls=new.window_calls + 1)
            if self._swap(raw, new):
                return
        # Losing every race only delays forgetting a failure; never worth failing a call.

    def record_failure(self, reason: str) -> None:
        for _ in range(_CAS_TRIES):
            raw = self._store.get(self._key)
            st = BreakerState.decode(raw)
            now = self._clock()
            if st.state == OPEN:
                return
            if st.state == HALF_OPEN:
                new = replace(
                    st,
                    state=OPEN,
                    open_until=now + self._config.cooldown_s,
                    probes=0,
                    reason=f"probe failed: {reason}",
                )
                if self._swap(raw, new):
                    self._emit(
                        "breaker_open",
                        {"reason": new.reason, "failures": st.failures, **self._age(st, now)},
                    )
                    return
                continue
            new = self._rolled(st, now)
            new = replace(
                new,
                failures=new.failures + 1,
                window_calls=new.window_calls + 1,
                window_failures=new.window_failures + 1,
            )
            trip = self._trip_reason(new, reason)
            if trip:
                new = replace(
                    new,
                    state=OPEN,
                    open_until=now + self._config.cooldown_s,
                    opened_at=now,
                    reason=trip,
                )
            if self._swap(raw, new):
                if trip:
                    self._emit(
                        "breaker_open",
                        {
                            "reason": trip,
                            "failures": new.failures,
                            "cooldown_s": self._config.cooldown_s,
                        },
                    )
                return

    def _trip_reason(self, st: BreakerState, last: str) -> str:
        cfg = self._config
        if st.failures >= cfg.failure_threshold:
            return f"{st.failures} consecutive failures (last: {last})"
        if (
            st.window_calls >= cfg.min_calls
            and st.window_failures / st.window_calls >= cfg.failure_rate
        ):
            return (
                f"failure rate {st.window_failures}/{st.window_calls} over "
                f"{cfg.window_s:.0f}s (last: {last})"
            )
        return ""

    def _rolled(self, st: BreakerState, now: float) -> BreakerState:
        if st.window_start and now - st.window_start < self._config.window_s:
            return st
        return replace(st, window_calls=0, window_failures=0, window_start=now)

    def _age(self, st: BreakerState, now: float) -> dict[str, object]:
        return {"open_duration_s": round(now - st.opened_at, 3) if st.opened_at else None}

    def _swap(self, raw: bytes | None, new: BreakerState) -> bool:
        return self._store.compare_and_swap(self._key, raw, new.encode())
