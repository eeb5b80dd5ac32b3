"""A store that serves from a fallback while its primary (Redis) is unavailable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .base import StateStore, StoreUnavailableError

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


class ResilientStore:
    """A `StateStore` that fails open: Redis trouble never fails a call.

    Every operation goes to `primary`. When it raises `StoreUnavailableError` the store turns
    *degraded*: it calls `on_degraded(reason)` once, answers that operation and the following
    ones from `fallback`, and lets one operation try the primary again at most once every
    `retry_after_s` (the others keep going to the fallback meanwhile, so a dead server costs
    one short timeout per interval, not one per call). The first primary operation that
    succeeds ends the outage: `on_recovered(outage_seconds)` is called once and everything goes
    back to the primary. Transitions happen under a lock, so each callback runs exactly once
    per outage however many threads fail or recover together; callbacks run while that lock is
    held (keep them short — an audit line, a metric) and an exception from one is logged, never
    raised into the caller's operation.

    Consistency trade-off: during an outage every node (and each process with its own fallback
    file) has its own local state — breakers trip per node, dedupe and in-flight locks are per
    node, so two nodes may both call a provider for the same request. Nothing is copied between
    the stores: on recovery the primary holds what it held before the outage (less what
    expired), and what was written to the fallback meanwhile stays there, unused, until it
    expires. Around each switch a caller may not read what it wrote just before, on the other
    store, and operations running while the primary is retried are served by the fallback. The
    fail-open choice trades exactness for availability, which is right for
    protections that only save cost and load.

    Args:
        primary: the shared store (normally `RedisStore`).
        fallback: the local store (normally `SQLiteStore`).
        on_degraded: called with the one-line reason when an outage starts.
        on_recovered: called with the outage's length in seconds when it ends.
        retry_after_s: the least time between two tries of the primary while degraded.
        clock: monotonic seconds (inject a fake one in tests).
    """

    def __init__(
        self,
        primary: StateStore,
        fallback: StateStore,
        *,
        on_degraded: Callable[[str], None],
        on_recovered: Callable[[float], None],
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._on_degraded = on_degraded
        self._on_recovered = on_recovered
        self._retry_after_s = retry_after_s
        self._clock = clock
        # Reentrant, so a callback that itself uses this store does not deadlock.
        self._lock = threading.RLock()
        self._degraded_since: float | None = None
        self._next_try = 0.0
        self._trying = False
        # A plain attribute (not a property) so the class meets the protocol's `name: str`.
        self.name = primary.name

    @property
    def degraded(self) -> bool:
        """True while operations are served by the fallback."""
        return self._degraded_since is not None

    def get(self, key: str) -> bytes | None:
        return self._call(lambda store: store.get(key))

    def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        self._call(lambda store: store.put(key, value, ttl_s=ttl_s))

    def add(self, key: str, value: bytes, *, ttl_s: float) -> bool:
        return self._call(lambda store: store.add(key, value, ttl_s=ttl_s))

    def compare_and_swap(
        self, key: str, expected: bytes | None, new: bytes, *, ttl_s: float | None = None
    ) -> bool:
        return self._call(lambda store: store.compare_and_swap(key, expected, new, ttl_s=ttl_s))

    def delete(self, key: str, *, only_if: bytes | None = None) -> bool:
        return self._call(lambda store: store.delete(key, only_if=only_if))

    def close(self) -> None:
        try:
            self._primary.close()
        finally:
            self._fallback.close()

    def _call(self, op: Callable[[StateStore], _T]) -> _T:
        with self._lock:
            trying = False
            if self._degraded_since is not None:
                if self._trying or self._clock() < self._next_try:
                    use_primary = False
                else:
                    use_primary = trying = self._trying = True
            else:
                use_primary = True
        if not use_primary:
            return op(self._fallback)
        try:
            result = op(self._primary)
        except StoreUnavailableError as exc:
            self._primary_failed(str(exc), trying)
            return op(self._fallback)
        except BaseException:
            if trying:
                with self._lock:
                    self._trying = False
            raise
        if trying:
            self._primary_recovered()
        return result

    def _primary_failed(self, reason: str, was_retry: bool) -> None:
        with self._lock:
            now = self._clock()
            if was_retry:
                self._trying = False
            self._next_try = now + self._retry_after_s
            if self._degraded_since is not None:
                return
            self._degraded_since = now
            self.name = f"{self._fallback.name} (degraded from {self._primary.name})"
            _notify(self._on_degraded, reason)

    def _primary_recovered(self) -> None:
        with self._lock:
            self._trying = False
            if self._degraded_since is None:
                return
            outage_s = max(0.0, self._clock() - self._degraded_since)
            self._degraded_since = None
            self.name = self._primary.name
            _notify(self._on_recovered, outage_s)


def _notify(callback: Callable[[_T], None], arg: _T) -> None:
    try:
        callback(arg)
    except Exception:
        _log.exception("state store degradation callback failed")
