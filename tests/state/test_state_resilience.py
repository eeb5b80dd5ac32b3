"""Failing open: Redis trouble is served from the local store, seen once, and recovered from."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nexus_llm.state import (
    MemoryStore,
    ResilientStore,
    SQLiteStore,
    StateStore,
    StoreUnavailableError,
)
from nexus_llm.state.redis import RedisStore
from tests.support import FakeClock, RedisServer

THREADS = 8
RETRY_AFTER_S = 5.0


class FlakyStore(MemoryStore):
    """A memory store that can be switched off, counting the calls that reach it."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.down:
            raise StoreUnavailableError("flaky unavailable: switched off")
        return super().get(key)

    def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        self.calls += 1
        if self.down:
            raise StoreUnavailableError("flaky unavailable: switched off")
        super().put(key, value, ttl_s=ttl_s)


class Events:
    """What the store reported through its callbacks."""

    def __init__(self) -> None:
        self.degraded: list[str] = []
        self.recovered: list[float] = []

    def store(
        self, primary: StateStore, fallback: StateStore, clock: Callable[[], float]
    ) -> ResilientStore:
        return ResilientStore(
            primary,
            fallback,
            on_degraded=self.degraded.append,
            on_recovered=self.recovered.append,
            retry_after_s=RETRY_AFTER_S,
            clock=clock,
        )


def _hammer(store: StateStore, worker_ops: Callable[[StateStore, int], None]) -> None:
    """Run `worker_ops` in THREADS threads started together; re-raise the first failure."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            worker_ops(store, n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[0]


def _each(op: Callable[[StateStore, str], object]) -> Callable[[StateStore, int], None]:
    """A thread's work: `op` on 200 keys of its own."""

    def ops(store: StateStore, n: int) -> None:
        for i in range(200):
            op(store, f"{n}:{i}")

    return ops


def _mixed_ops(phase: str) -> Callable[[StateStore, int], None]:
    """Every kind of operation, on keys of this phase and thread, each checked."""

    def ops(store: StateStore, n: int) -> None:
        for i in range(25):
            key = f"{phase}:{n}:{i}"
            store.put(key, b"v")
            assert store.get(key) == b"v"
            assert store.add(f"lock:{key}", b"me", ttl_s=60.0)
            assert store.compare_and_swap(key, b"v", b"w")
            assert store.delete(key, only_if=b"w")

    return ops


class TestWithFlakyPrimary:
    """The degradation rules, on an in-memory primary that the test switches off and on."""

    def test_healthy_primary_serves_everything(self, fake_clock: FakeClock) -> None:
        """While the primary works, the fallback is never written and no callback fires."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        store.put("k", b"v")
        assert store.get("k") == b"v"
        assert fallback.get("k") is None
        assert store.name == "flaky"
        assert not store.degraded
        assert (events.degraded, events.recovered) == ([], [])

    def test_outage_fails_open_and_is_reported_once(self, fake_clock: FakeClock) -> None:
        """A down primary: the call succeeds from the fallback, and `on_degraded` fires once."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        primary.down = True
        store.put("k", b"v")
        assert store.get("k") == b"v"
        assert fallback.get("k") == b"v"
        assert events.degraded == ["flaky unavailable: switched off"]
        assert store.degraded
        assert store.name == "memory (degraded from flaky)"

    def test_primary_is_retried_at_most_once_per_interval(self, fake_clock: FakeClock) -> None:
        """While degraded, calls inside `retry_after_s` never touch the primary."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        primary.down = True
        store.get("k")
        assert primary.calls == 1
        for _ in range(100):
            store.get("k")
        fake_clock.advance(RETRY_AFTER_S - 0.001)
        store.get("k")
        assert primary.calls == 1
        fake_clock.advance(0.001)
        for _ in range(10):
            store.get("k")
        assert primary.calls == 2
        assert len(events.degraded) == 1

    def test_recovery_returns_to_primary_once(self, fake_clock: FakeClock) -> None:
        """The first successful retry ends the outage, reporting its length once."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        primary.down = True
        store.put("k", b"during")
        primary.down = False
        store.put("k", b"still local")
        assert fallback.get("k") == b"still local"
        fake_clock.advance(7.5)
        store.put("k", b"after")
        assert primary.get("k") == b"after"
        assert events.recovered == [7.5]
        assert not store.degraded
        assert store.name == "flaky"
        store.get("k")
        assert events.recovered == [7.5]

    def test_each_outage_is_reported(self, fake_clock: FakeClock) -> None:
        """A second outage after a recovery is a new degradation."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        for _ in range(2):
            primary.down = True
            store.get("k")
            primary.down = False
            fake_clock.advance(RETRY_AFTER_S)
            store.get("k")
        assert len(events.degraded) == 2
        assert events.recovered == [RETRY_AFTER_S, RETRY_AFTER_S]

    def test_many_threads_degrade_once(self, fake_clock: FakeClock) -> None:
        """8 threads failing together still call `on_degraded` exactly once."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        primary.down = True
        _hammer(store, _each(lambda s, key: s.put(key, b"v")))
        assert len(events.degraded) == 1
        assert primary.calls <= THREADS

    def test_many_threads_recover_once(self, fake_clock: FakeClock) -> None:
        """8 threads after the retry interval: one retries, and `on_recovered` fires once."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        primary.down = True
        store.get("k")
        primary.down = False
        fake_clock.advance(RETRY_AFTER_S)
        _hammer(store, _each(lambda s, key: s.get(key)))
        assert len(events.recovered) == 1
        assert not store.degraded

    def test_a_failing_callback_does_not_fail_the_call(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An exception from `on_degraded` is logged; the caller's operation still succeeds."""

        def explode(reason: str) -> None:
            raise RuntimeError("audit log full")

        primary = FlakyStore()
        primary.down = True
        store = ResilientStore(
            primary, MemoryStore(), on_degraded=explode, on_recovered=print, clock=fake_clock
        )
        store.put("k", b"v")
        assert store.get("k") == b"v"
        assert "callback failed" in caplog.text

    def test_fallback_failure_is_raised(self, fake_clock: FakeClock) -> None:
        """With both stores down there is nothing to fall back to: the error reaches the caller."""
        events, primary, fallback = Events(), FlakyStore(), FlakyStore()
        store = events.store(primary, fallback, fake_clock)
        primary.down = fallback.down = True
        with pytest.raises(StoreUnavailableError):
            store.get("k")

    def test_close_closes_both(self, fake_clock: FakeClock) -> None:
        """close() closes the primary and the fallback."""
        events, primary, fallback = Events(), FlakyStore(), MemoryStore()
        store = events.store(primary, fallback, fake_clock)
        store.put("k", b"v")
        fallback.put("f", b"v")
        store.close()
        assert primary.get("k") is None
        assert fallback.get("f") is None


def _blind_ops(store: StateStore, n: int, i: int) -> None:
    """Every kind of operation, results unchecked: around a switch of stores any answer is fair."""
    key = f"blind:{n}:{i}"
    store.put(key, b"v", ttl_s=60.0)
    store.get(key)
    store.add(f"lock:{key}", b"me", ttl_s=60.0)
    store.compare_and_swap(key, b"v", b"w")
    store.delete(key, only_if=b"w")


def _hammer_through(store: StateStore, event: Callable[[], None]) -> None:
    """8 threads run `_blind_ops` without pause; `event` happens while they are at it."""
    stop = threading.Event()
    done = [0] * THREADS
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            while not stop.is_set():
                _blind_ops(store, n, done[n])
                done[n] += 1
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def wait_for(ops_each: int) -> None:
        target = [d + ops_each for d in done]
        while not stop.is_set() and any(d < t for d, t in zip(done, target, strict=True)):
            time.sleep(0.005)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(20)
        event()
        wait_for(20)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors[0]


@pytest.mark.timeout(60)
def test_redis_killed_mid_run_then_restarted(
    own_redis_server: RedisServer, tmp_path: Path, fake_clock: FakeClock
) -> None:
    """Redis killed under 8 busy threads: calls keep working, degrade once, recover once."""
    events = Events()
    # A dead local server refuses at once; the longer timeout only keeps a busy CI from
    # mistaking a slow answer for an outage before the kill.
    primary = RedisStore(own_redis_server.url, prefix="r:", timeout_s=2.0)
    store = events.store(primary, SQLiteStore(tmp_path / "state.db"), fake_clock)
    try:
        _hammer(store, _mixed_ops("up"))
        assert store.name == "redis"
        assert events.degraded == []

        _hammer_through(store, own_redis_server.stop)
        assert len(events.degraded) == 1
        assert events.degraded[0].startswith("redis unavailable")
        assert store.name == "sqlite (degraded from redis)"
        _hammer(store, _mixed_ops("down"))

        own_redis_server.start()
        store.put("before-retry", b"local")  # inside retry_after_s: still the fallback
        assert store.degraded
        _hammer_through(store, lambda: fake_clock.advance(RETRY_AFTER_S))
        assert events.recovered == [RETRY_AFTER_S]
        assert len(events.degraded) == 1
        assert store.name == "redis"
        _hammer(store, _mixed_ops("back"))
        store.put("after", b"shared")
        with own_redis_server.client() as raw:
            assert raw.get("r:after") == b"shared"
            assert raw.get("r:before-retry") is None
    finally:
        store.close()


@pytest.mark.timeout(15)
def test_unreachable_redis_degrades_at_once(tmp_path: Path) -> None:
    """Nothing listening at the Redis URL: the first call succeeds from SQLite and degrades once."""
    events = Events()
    primary = RedisStore("redis://:hunter2@127.0.0.1:1/0", timeout_s=0.25)
    store = events.store(primary, SQLiteStore(tmp_path / "state.db"), FakeClock())
    try:
        store.put("k", b"v")
        assert store.get("k") == b"v"
        assert store.add("lock", b"me", ttl_s=30.0)
        assert store.degraded
        assert events.degraded == ["redis unavailable: connection failed"]
    finally:
        store.close()
