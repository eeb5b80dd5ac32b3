"""The state-store tests' multi-process workers (clocks and redis-servers: `tests.support`)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from nexus_llm.state import SQLiteStore, StateStore
from nexus_llm.state.redis import RedisStore

# Where a worker process finds its store: ("sqlite", path) or ("redis", url, prefix).
StoreSpec = tuple[str, ...]


def open_spec(spec: StoreSpec) -> StateStore:
    """Open the store a worker process was told about."""
    if spec[0] == "sqlite":
        return SQLiteStore(spec[1])
    if spec[0] == "redis":
        # A generous timeout: four busy processes on two cores must not look like an outage.
        return RedisStore(spec[1], prefix=spec[2], timeout_s=5.0)
    raise ValueError(spec[0])


def add_worker(spec: StoreSpec, keys: int, barrier: Barrier, out: Queue[list[int]]) -> None:
    """Try to take every lock `lock:0..keys-1`; report the ones this process won."""
    store = open_spec(spec)
    barrier.wait()
    won = [i for i in range(keys) if store.add(f"lock:{i}", b"held", ttl_s=60.0)]
    store.close()
    out.put(won)


def cas_worker(spec: StoreSpec, increments: int, barrier: Barrier, out: Queue[int]) -> None:
    """Add one to `counter` `increments` times with a read / compare-and-swap retry loop."""
    store = open_spec(spec)
    barrier.wait()
    retries = 0
    for _ in range(increments):
        while True:
            current = store.get("counter")
            new = str(int(current or b"0") + 1).encode()
            if store.compare_and_swap("counter", current, new):
                break
            retries += 1
    store.close()
    out.put(retries)
