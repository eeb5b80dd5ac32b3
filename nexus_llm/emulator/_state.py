"""The emulator's run-time state: request counts, usage knobs and faults, per provider.

Test threads write it (through ``Emulator`` or the control endpoint) while the server thread
reads it, so every access goes through a lock; the fault queue has its own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from ._faults import Fault, FaultRegistry, make_fault


@final
@dataclass(frozen=True, slots=True)
class UsageKnobs:
    """Usage figures a provider reports on top of what the prompt and reply imply.

    Args:
        thoughts_tokens: Reasoning tokens reported on each successful reply.
        cached_tokens: Prompt tokens reported as served from cache (clamped to the prompt).
    """

    thoughts_tokens: int = 0
    cached_tokens: int = 0


def make_knobs(*, thoughts_tokens: object, cached_tokens: object) -> UsageKnobs:
    """Validate knob values that may come straight from JSON and build ``UsageKnobs``."""
    return UsageKnobs(
        thoughts_tokens=_token_count("thoughts_tokens", thoughts_tokens),
        cached_tokens=_token_count("cached_tokens", cached_tokens),
    )


def _token_count(name: str, value: object) -> int:
    # bool is an int subclass; ``True`` tokens is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


@final
class EmulatorState:
    """Counts, knobs and faults for a fixed set of provider names."""

    __slots__ = ("_counts", "_faults", "_knobs", "_lock", "_providers")

    def __init__(self, providers: Sequence[str]) -> None:
        self._providers = tuple(providers)
        self._lock = threading.Lock()
        self._faults = FaultRegistry()
        self._counts = dict.fromkeys(self._providers, 0)
        self._knobs = dict.fromkeys(self._providers, UsageKnobs())

    @property
    def providers(self) -> tuple[str, ...]:
        """The provider names this emulator answers for."""
        return self._providers

    def check_provider(self, name: object) -> str:
        """Return ``name`` if it is a known provider, else raise ``ValueError`` naming them."""
        if isinstance(name, str) and name in self._providers:
            return name
        raise ValueError(
            f"unknown provider {name!r}; allowed providers: {', '.join(self._providers)}"
        )

    def begin_request(self, provider: str) -> Fault | None:
        """Count one request to ``provider`` and return the fault it should suffer, if any."""
        with self._lock:
            self._counts[provider] += 1
        return self._faults.take(provider)

    def inject(
        self,
        provider: object,
        kind: object,
        *,
        times: object,
        retry_after_s: object,
        delay_s: object,
    ) -> Fault:
        """Validate and queue a fault; raise ``ValueError`` with one clear line if invalid."""
        fault = make_fault(
            self.check_provider(provider),
            kind,
            times=times,
            retry_after_s=retry_after_s,
            delay_s=delay_s,
        )
        self._faults.add(fault)
        return fault

    def clear_faults(self, provider: str | None = None) -> int:
        """Drop the faults of one provider, or all; return how many were dropped."""
        if provider is not None:
            self.check_provider(provider)
        return self._faults.clear(provider)

    def configure(
        self, provider: object, *, thoughts_tokens: object, cached_tokens: object
    ) -> UsageKnobs:
        """Replace the usage knobs of ``provider`` and return them."""
        name = self.check_provider(provider)
        knobs = make_knobs(thoughts_tokens=thoughts_tokens, cached_tokens=cached_tokens)
        with self._lock:
            self._knobs[name] = knobs
        return knobs

    def knobs(self, provider: str) -> UsageKnobs:
        """Return the usage knobs currently set for ``provider``."""
        with self._lock:
            return self._knobs[provider]

    def request_count(self, provider: str | None = None) -> int:
        """Return requests received by ``provider``, or by all providers when ``None``."""
        with self._lock:
            if provider is None:
                return sum(self._counts.values())
            return self._counts[self.check_provider(provider)]

    def stats(self) -> dict[str, object]:
        """Return ``{"requests": {provider: n}, "faults": [fault JSON, ...]}``."""
        with self._lock:
            requests = dict(self._counts)
        return {
            "requests": requests,
            "faults": [fault.to_json() for fault in self._faults.active()],
        }

    def reset(self) -> None:
        """Forget all faults, knobs and counts."""
        self._faults.clear()
        with self._lock:
            self._counts = dict.fromkeys(self._providers, 0)
            self._knobs = dict.fromkeys(self._providers, UsageKnobs())
