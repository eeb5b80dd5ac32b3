"""Fault injection: the ways a provider can misbehave, and the queue of what goes wrong next.

Faults are written by test threads (``Emulator.inject``, the control endpoint) and consumed by
the server thread, one per provider request, so the registry guards its queue with a lock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import final


class FaultKind(StrEnum):
    """A way an emulated provider can misbehave on one request.

    Error kinds answer with the provider's real error body: ``bad_key`` (wrong API key),
    ``rate_limit`` (per-minute quota with a retry hint), ``quota_daily`` (daily quota, no hint),
    ``server_error`` (500) and ``unavailable`` (503, overloaded).

    Transport kinds misbehave on the wire: ``slow`` (wait ``delay_s``, then answer normally),
    ``timeout`` (never answer), ``reset`` (drop the TCP connection without a response),
    ``malformed_json`` (200 whose body is not JSON) and ``truncated`` (200 whose body stops
    short of its ``Content-Length``).

    ``omit_usage`` answers normally but leaves the usage block out (in a stream: every usage
    field and the usage chunk).

    Stream kinds hit streaming requests after the 200 and some events: ``stream_cut`` ends the
    HTTP body cleanly and closes the connection, but without the stream's end marker (only a
    stream-aware client notices), and ``stream_error`` sends the provider's in-stream error
    event and ends the stream there. On a unary request ``stream_cut`` acts as ``truncated``
    and ``stream_error`` answers that same error with its HTTP status.

    Every other kind means the same for streams: error kinds answer
    before the stream starts, ``slow`` delays the first byte, ``truncated`` stops mid-event
    without HTTP's last chunk and ``malformed_json`` breaks the JSON of one event.
    """

    BAD_KEY = "bad_key"
    RATE_LIMIT = "rate_limit"
    QUOTA_DAILY = "quota_daily"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    SLOW = "slow"
    TIMEOUT = "timeout"
    RESET = "reset"
    MALFORMED_JSON = "malformed_json"
    TRUNCATED = "truncated"
    OMIT_USAGE = "omit_usage"
    STREAM_CUT = "stream_cut"
    STREAM_ERROR = "stream_error"


_KIND_NAMES = ", ".join(kind.value for kind in FaultKind)


@final
@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault.

    Args:
        provider: The provider whose requests it hits, e.g. ``"gemini"``.
        kind: What goes wrong.
        times: How many more requests it hits; ``None`` means every request until cleared.
            ``Emulator.inject`` returns the fault as injected; the registry keeps its own
            count-down copy.
        retry_after_s: The retry hint of ``rate_limit`` (seconds).
        delay_s: How long ``slow`` waits before answering (seconds).
    """

    provider: str
    kind: FaultKind
    times: int | None = None
    retry_after_s: float = 2.0
    delay_s: float = 1.0

    def to_json(self) -> dict[str, object]:
        """Return the fault as the JSON object the control endpoint and ``stats()`` show."""
        return {
            "provider": self.provider,
            "kind": self.kind.value,
            "times": self.times,
            "retry_after_s": self.retry_after_s,
            "delay_s": self.delay_s,
        }


def parse_kind(value: object) -> FaultKind:
    """Return ``value`` as a ``FaultKind``, or raise ``ValueError`` listing the allowed kinds."""
    if isinstance(value, str):
        try:
            return FaultKind(value)
        except ValueError:
            pass
    raise ValueError(f"unknown fault kind {value!r}; allowed kinds: {_KIND_NAMES}")


def make_fault(
    provider: str, kind: object, *, times: object, retry_after_s: object, delay_s: object
) -> Fault:
    """Validate fault parameters that may come straight from JSON and build the ``Fault``.

    The provider name is checked by the caller, which knows which providers exist.
    """
    return Fault(
        provider=provider,
        kind=parse_kind(kind),
        times=_times(times),
        retry_after_s=_seconds("retry_after_s", retry_after_s),
        delay_s=_seconds("delay_s", delay_s),
    )


def _times(value: object) -> int | None:
    if value is None:
        return None
    # bool is an int subclass; ``times=True`` is a mistake, not "once".
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"times must be a positive integer or null (until cleared), got {value!r}")
    return value


def _seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


@final
class FaultRegistry:
    """The queue of active faults, first in first out per provider; safe across threads.

    When several faults target one provider, the oldest applies until its ``times`` run out,
    so tests can script sequences such as "two rate limits, then one server error".
    """

    __slots__ = ("_faults", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` behind any fault already active for its provider."""
        with self._lock:
            self._faults.append(fault)

    def take(self, provider: str) -> Fault | None:
        """Consume one use of the oldest fault for ``provider`` and return it, if any."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.provider != provider:
                    continue
                if fault.times is None:
                    return fault
                if fault.times == 1:
                    del self._faults[index]
                else:
                    self._faults[index] = replace(fault, times=fault.times - 1)
                return fault
        return None

    def clear(self, provider: str | None = None) -> int:
        """Drop the faults of ``provider`` (all providers when ``None``); return how many."""
        with self._lock:
            kept = [f for f in self._faults if provider is not None and f.provider != provider]
            cleared = len(self._faults) - len(kept)
            self._faults = kept
        return cleared

    def active(self) -> list[Fault]:
        """Return a snapshot of the active faults, in the order they will apply."""
        with self._lock:
            return list(self._faults)
