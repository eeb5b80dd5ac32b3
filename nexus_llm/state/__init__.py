"""Shared state for the protections: the store interface and its backends.

`RedisStore` is imported on first use, so `import nexus_llm.state` does not import redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import StateStore, StoreUnavailableError
from .factory import open_store
from .memory import MemoryStore
from .resilient import ResilientStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = [
    "MemoryStore",
    "RedisStore",
    "ResilientStore",
    "SQLiteStore",
    "StateStore",
    "StoreUnavailableError",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
