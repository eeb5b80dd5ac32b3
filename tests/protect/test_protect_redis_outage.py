"""Redis killed under a busy `Client`: calls keep succeeding, the outage is seen once, and
the protections go back to Redis when it returns.

The first test builds the fail-open store itself, on a fake monotonic clock, so the retry
interval is stepped over rather than waited out. The second goes through `REDIS_URL` and the
real factory, and waits out the factory's retry interval (bounded).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.observe.recorder import Recorder
from nexus_llm.pipeline import CallPipeline
from nexus_llm.state import ResilientStore, SQLiteStore
from nexus_llm.state.redis import RedisStore
from tests.support import FakeClock, RedisServer

THREADS = 8
CALLS_AROUND_EVENT = 10  # per thread, before and after the kill (or the retry)
RETRY_AFTER_S = 5.0
RECOVERY_WAIT_S = 20.0  # the bound on waiting out the factory's 5 s retry interval


def _settings(emulator: Emulator, tmp_path: Path, redis_url: str) -> Settings:
    return Settings.from_env(
        {
            "GEMINI_API_KEY": emulator.gemini_key,
            "GEMINI_BASE_URL": emulator.base_url,
            "LLM_PROVIDER_ORDER": "gemini",
            "LLM_AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"),
            "LLM_COST_LEDGER_PATH": str(tmp_path / "ledger.jsonl"),
            "LLM_STATE_PATH": str(tmp_path / "llm_state.sqlite3"),
            "REDIS_URL": redis_url,
            # A busy CI must not mistake a slow answer for an outage; a dead local server
            # refuses at once, whatever the timeout.
            "REDIS_TIMEOUT_S": "2",
        }
    )


def _audit(settings: Settings, name: str) -> list[dict[str, Any]]:
    lines = settings.audit_log_path.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


def _degraded_total() -> float:
    value = REGISTRY.get_sample_value("nexus_state_degraded_total", {"backend": "redis"})
    return value or 0.0


def _redis_dedupe_entries(server: RedisServer) -> int:
    with server.client() as raw:
        return len(raw.keys("nexus:dedupe:*"))


def _calls_through(client: Client, label: str, event: Callable[[], None]) -> list[str]:
    """THREADS threads call without pause, each prompt new; `event` happens while they are at
    it. Returns every failure, as text."""
    stop = threading.Event()
    done = [0] * THREADS
    failures: list[str] = []

    def run(n: int) -> None:
        while not stop.is_set():
            try:
                client.generate(f"{label} {n} {done[n]}", purpose="ops")
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                stop.set()
            done[n] += 1

    def wait_for(calls_each: int) -> None:
        target = [d + calls_each for d in done]
        deadline = time.monotonic() + 60
        while not stop.is_set() and any(d < t for d, t in zip(done, target, strict=True)):
            if time.monotonic() > deadline:
                failures.append("the threads stopped making progress")
                return
            time.sleep(0.005)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(CALLS_AROUND_EVENT)
        event()
        wait_for(CALLS_AROUND_EVENT)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    return failures


@pytest.mark.timeout(60)
def test_redis_killed_under_busy_client_fails_open_and_recovers(
    own_redis_server: RedisServer, fresh_emulator: Emulator, tmp_path: Path, fake_clock: FakeClock
) -> None:
    """Killed under 8 calling threads: every call succeeds, one `state_degraded`, one
    `state_recovered` after the restart, and the dedupe cache is back in Redis."""
    settings = _settings(fresh_emulator, tmp_path, own_redis_server.url)
    recorder = Recorder(settings)
    store = ResilientStore(
        RedisStore(own_redis_server.url, timeout_s=settings.protection.redis_timeout_s),
        SQLiteStore(settings.state_path),
        on_degraded=recorder.state_degraded,
        on_recovered=recorder.state_recovered,
        retry_after_s=RETRY_AFTER_S,
        clock=fake_clock,
    )
    pipeline = CallPipeline(settings, recorder=recorder, store=store)
    degraded_before = _degraded_total()
    with Client(settings, pipeline=pipeline) as client:
        for i in range(5):
            client.generate(f"up {i}", purpose="ops")
        assert client.generate("up 0", purpose="ops").dedupe_hit
        assert store.name == "redis"
        assert _redis_dedupe_entries(own_redis_server) == 5

        assert _calls_through(client, "killed", own_redis_server.stop) == []
        assert store.name == "sqlite (degraded from redis)"
        degraded = _audit(settings, "state_degraded")
        assert len(degraded) == 1
        assert degraded[0]["reason"] == "redis unavailable: connection failed"
        assert _degraded_total() == degraded_before + 1
        # The local store carries the protections meanwhile: a repeat is still a hit.
        assert not client.generate("while down", purpose="ops").dedupe_hit
        assert client.generate("while down", purpose="ops").dedupe_hit

        port = own_redis_server.port
        own_redis_server.start()
        assert own_redis_server.port == port
        client.generate("restarted, inside the retry interval", purpose="ops")
        assert store.degraded
        assert _redis_dedupe_entries(own_redis_server) == 0

        failures = _calls_through(client, "back", lambda: fake_clock.advance(RETRY_AFTER_S))
        assert failures == []
        assert store.name == "redis"
        assert len(_audit(settings, "state_recovered")) == 1
        assert _redis_dedupe_entries(own_redis_server) > 0
        assert not client.generate("after recovery", purpose="ops").dedupe_hit
        assert client.generate("after recovery", purpose="ops").dedupe_hit
    store.close()
    assert len(_audit(settings, "state_degraded")) == 1
    assert _degraded_total() == degraded_before + 1
    assert _audit(settings, "llm_error") == []


@pytest.mark.timeout(60)
def test_redis_url_client_degrades_once_and_recovers_through_the_factory(
    own_redis_server: RedisServer, fresh_emulator: Emulator, tmp_path: Path
) -> None:
    """A Client built from REDIS_URL alone survives the kill and returns to Redis after it."""
    settings = _settings(fresh_emulator, tmp_path, own_redis_server.url)
    degraded_before = _degraded_total()
    with Client(settings) as client:
        store = client.pipeline.store
        client.generate("before", purpose="ops")
        assert store.name == "redis"

        own_redis_server.stop()
        for i in range(20):
            assert not client.generate(f"during {i}", purpose="ops").dedupe_hit
        assert client.generate("during 0", purpose="ops").dedupe_hit
        assert store.name == "sqlite (degraded from redis)"
        assert len(_audit(settings, "state_degraded")) == 1
        assert _degraded_total() == degraded_before + 1

        own_redis_server.start()
        deadline = time.monotonic() + RECOVERY_WAIT_S
        calls = 0
        while store.name != "redis" and time.monotonic() < deadline:
            client.generate(f"after {calls}", purpose="ops")
            calls += 1
            time.sleep(0.2)
        assert store.name == "redis", f"still {store.name!r} after {RECOVERY_WAIT_S:.0f}s"
        client.generate("recovered", purpose="ops")
        assert _redis_dedupe_entries(own_redis_server) >= 1
    store.close()
    assert len(_audit(settings, "state_degraded")) == 1
    assert len(_audit(settings, "state_recovered")) == 1
    assert _degraded_total() == degraded_before + 1
