"""Atomicity across processes: locks and compare-and-swap on SQLite and on a real Redis."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from nexus_llm.state import StateStore
from tests.state.harness import StoreSpec, add_worker, cas_worker, open_spec
from tests.support import RedisServer, mp_context

PROCESSES = 4
LOCKS = 200
INCREMENTS = 250

Worker = Callable[[StoreSpec, int, Barrier, "Queue[Any]"], None]


@pytest.fixture(params=["sqlite", "redis"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    """Where the worker processes find the shared store: a SQLite file, or a real redis-server."""
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path / "shared" / "state.db"))
    server: RedisServer = request.getfixturevalue("redis_server")
    return ("redis", server.url, f"mp:{uuid.uuid4().hex}:")


def _run_all(worker: Worker, spec: StoreSpec, count: int) -> list[Any]:
    """Start PROCESSES workers that begin together; return what each reported."""
    ctx: ForkContext | SpawnContext = mp_context()
    barrier = ctx.Barrier(PROCESSES)
    out: Queue[Any] = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(spec, count, barrier, out)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    # Read before joining: a child blocks on exit until its queued result has been taken.
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    return results


@pytest.mark.timeout(90)
def test_each_lock_has_exactly_one_winner(spec: StoreSpec) -> None:
    """4 processes racing `add` on the same 200 keys: every key is won by exactly one of them."""
    results: list[list[int]] = _run_all(add_worker, spec, LOCKS)
    wins = Counter(key for won in results for key in won)
    assert sorted(wins) == list(range(LOCKS))
    assert set(wins.values()) == {1}


@pytest.mark.timeout(90)
def test_cas_counter_loses_no_increment(spec: StoreSpec) -> None:
    """4 processes × 250 compare-and-swap increments leave the counter at exactly 1000."""
    _run_all(cas_worker, spec, INCREMENTS)
    store: StateStore = open_spec(spec)
    try:
        assert store.get("counter") == str(PROCESSES * INCREMENTS).encode()
    finally:
        store.close()
