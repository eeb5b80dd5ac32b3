"""Open the store the settings ask for, so that no store trouble ever fails an LLM call.

    Redis (REDIS_URL) ──falls back to──► SQLite file ──falls back to──► process memory

Each arrow is a `ResilientStore`: one degradation event per outage, the primary retried every
few seconds, one recovery event when it answers again. A SQLite file that cannot even be
opened (a read-only directory, a corrupt file) degrades to memory at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from .base import StateStore, StoreUnavailableError
from .memory import MemoryStore
from .resilient import ResilientStore
from .sqlite import SQLiteStore

# (reason, backend that failed, what serves instead)
OnDegraded = Callable[[str, str, str], None]
# (outage seconds, backend that came back)
OnRecovered = Callable[[float, str], None]


def open_store(
    *,
    redis_url: str | None,
    state_path: Path,
    redis_timeout_s: float,
    on_degraded: OnDegraded,
    on_recovered: OnRecovered,
) -> StateStore:
    """The state store for these settings (see the module docstring for the chain).

    Raises:
        ValueError: `redis_url` cannot be parsed (the message does not repeat it).
    """
    local = _local_store(state_path, on_degraded, on_recovered)
    if not redis_url:
        return local
    from .redis import RedisStore

    primary = RedisStore(redis_url, timeout_s=redis_timeout_s)
    return ResilientStore(
        primary,
        local,
        on_degraded=lambda reason: on_degraded(reason, "redis", local.name),
        on_recovered=partial(_recovered, on_recovered, "redis"),
    )


def _local_store(
    state_path: Path, on_degraded: OnDegraded, on_recovered: OnRecovered
) -> StateStore:
    try:
        sqlite = SQLiteStore(state_path)
    except StoreUnavailableError as exc:
        on_degraded(str(exc), "sqlite", "memory")
        return MemoryStore()
    return ResilientStore(
        sqlite,
        MemoryStore(),
        on_degraded=lambda reason: on_degraded(reason, "sqlite", "memory"),
        on_recovered=partial(_recovered, on_recovered, "sqlite"),
    )


def _recovered(callback: OnRecovered, backend: str, outage_s: float) -> None:
    callback(outage_s, backend)
