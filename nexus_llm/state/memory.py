"""An in-process store: for one process with no file, and for fast unit tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class MemoryStore:
    """Thread-safe, process-local; expiry on an injectable clock."""

    name = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, tuple[bytes, float | None]] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return value

    def _expiry(self, ttl_s: float | None) -> float | None:
        return None if ttl_s is None else self._clock() + ttl_s

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key)

    def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, self._expiry(ttl_s))

    def add(self, key: str, value: bytes, *, ttl_s: float) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._expiry(ttl_s))
            return True

    def compare_and_swap(
        self, key: str, expected: bytes | None, new: bytes, *, ttl_s: float | None = None
    ) -> bool:
        with self._lock:
            if self._live(key) != expected:
                return False
            self._data[key] = (new, self._expiry(ttl_s))
            return True

    def delete(self, key: str, *, only_if: bytes | None = None) -> bool:
        with self._lock:
            current = self._live(key)
            if current is None or (only_if is not None and current != only_if):
                return False
            del self._data[key]
            return True

    def close(self) -> None:
        with self._lock:
            self._data.clear()
