"""Open the store the settings ask for: SQLite alone, or Redis with SQLite to fall back on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import StateStore
from .resilient import ResilientStore
from .sqlite import SQLiteStore


def open_store(
    *,
    redis_url: str | None,
    state_path: Path,
    redis_timeout_s: float,
    on_degraded: Callable[[str], None],
    on_recovered: Callable[[float], None],
) -> StateStore:
    """The state store for these settings.

    Without `redis_url`: a `SQLiteStore` at `state_path`. With it: a `ResilientStore` over a
    `RedisStore` (imported only then, so `import nexus_llm` stays light) that falls back to the
    `SQLiteStore` while Redis is down, calling `on_degraded` / `on_recovered` around each
    outage. Nothing is sent to Redis until the first operation.

    Raises:
        StoreUnavailableError: the SQLite file cannot be opened (message names the path).
        ValueError: `redis_url` cannot be parsed (message does not repeat it).
    """
    if not redis_url:
        return SQLiteStore(state_path)
    from .redis import RedisStore

    primary = RedisStore(redis_url, timeout_s=redis_timeout_s)
    try:
        fallback = SQLiteStore(state_path)
    except BaseException:
        primary.close()
        raise
    return ResilientStore(primary, fallback, on_degraded=on_degraded, on_recovered=on_recovered)
