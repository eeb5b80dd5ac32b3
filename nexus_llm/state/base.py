"""The state store: the one small interface behind breaker state, dedupe cache and locks.

Every operation is atomic on its key, in one process and across processes and nodes — that is
what lets a breaker transition or an in-flight lock be decided once. Values are opaque bytes
(the callers store compact JSON). Keys are plain strings; backends add their own namespace.

TTLs are seconds measured on the store's clock: an injected `clock` for the SQLite and memory
backends (so tests control time), the server's clock for Redis. The rules every backend keeps:

- An expired key is absent: `get` returns None, `add` succeeds, `compare_and_swap` with
  `expected=None` succeeds, `delete` returns False.
- Every write sets the key's expiry afresh: `ttl_s=None` means "no expiry" in `put` *and* in
  `compare_and_swap` — a swap never inherits the TTL of the value it replaced, so a caller that
  wants a value to keep expiring passes its TTL on every swap.
- A TTL at or below zero makes the value expire at once (Redis, which counts whole milliseconds,
  keeps it for 1 ms); Redis rounds every TTL up to the next millisecond.

Backends: `MemoryStore` (one process), `SQLiteStore` (one host, many processes), `RedisStore`
(many nodes) and `ResilientStore` (Redis, falling back to SQLite while Redis is down).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class StoreUnavailableError(Exception):
    """The backend could not be reached or answered in time (the caller may fall back)."""


@runtime_checkable
class StateStore(Protocol):
    """Operations the protections need; each is atomic on its key."""

    name: str

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        """Set unconditionally; `ttl_s=None` keeps it until deleted or replaced."""
        ...

    def add(self, key: str, value: bytes, *, ttl_s: float) -> bool:
        """Set only if absent (or expired); True when this call set it. For locks."""
        ...

    def compare_and_swap(
        self, key: str, expected: bytes | None, new: bytes, *, ttl_s: float | None = None
    ) -> bool:
        """Replace the value only if it is still `expected` (None: only if absent)."""
        ...

    def delete(self, key: str, *, only_if: bytes | None = None) -> bool:
        """Remove the key (only if its value is `only_if`, when given); True if removed."""
        ...

    def close(self) -> None: ...
