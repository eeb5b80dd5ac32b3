"""Protections shared by processes: one dedupe cache and one breaker, on SQLite and on Redis.

Every worker process builds its client the normal way, from `Settings.from_env(...)`, so the
real store factory runs: `LLM_STATE_PATH` alone gives a `SQLiteStore`, `REDIS_URL` a Redis
store with that file to fall back on. The emulator runs in the test process and counts what
reaches it. Breaker time is a clock shared by the processes, moved by the test, never slept.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from nexus_llm import Client, Settings
from nexus_llm.client import build_chat_request
from nexus_llm.emulator import Emulator
from nexus_llm.pipeline import CallPipeline
from nexus_llm.protect.breaker import BreakerState
from nexus_llm.protect.dedupe import CachedAnswer, dedupe_key
from nexus_llm.state import SQLiteStore
from nexus_llm.tagging import resolve_tags
from tests.support import RedisServer, mp_context

PROCESSES = 4
WAIT_S = 60.0  # the most any step waits for a child: a bound, never an expectation
COOLDOWN_S = 30.0

# What a worker reports about one call: ("ok", detail) or (exception class name, message).
Outcome = tuple[str, str]


@dataclass(frozen=True)
class SharedState:
    """The environment every process of one test is built from, and a way to read its store."""

    backend: str
    env: dict[str, str]
    redis: RedisServer | None

    @property
    def state_path(self) -> Path:
        return Path(self.env["LLM_STATE_PATH"])

    def read(self, key: str) -> bytes | None:
        """The value the shared store holds under `key` (Redis keys carry the `nexus:` prefix)."""
        if self.redis is not None:
            with self.redis.client() as raw:
                value = raw.get(f"nexus:{key}")
            return None if value is None else bytes(value)
        return self.read_file(key)

    def read_file(self, key: str) -> bytes | None:
        """The value the SQLite file holds under `key` (with Redis: the unused fallback)."""
        store = SQLiteStore(self.state_path)
        try:
            return store.get(key)
        finally:
            store.close()

    def with_env(self, **extra: str) -> SharedState:
        """The same store, with more settings for the processes."""
        return replace(self, env={**self.env, **extra})

    def audit(self, name: str) -> list[dict[str, Any]]:
        return [e for e in _jsonl(Path(self.env["LLM_AUDIT_LOG_PATH"])) if e["event"] == name]

    def ledger(self) -> list[dict[str, Any]]:
        return _jsonl(Path(self.env["LLM_COST_LEDGER_PATH"]))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class Children:
    """Worker processes of one test; whatever is still running at teardown is stopped."""

    def __init__(self) -> None:
        self.ctx: ForkContext | SpawnContext = mp_context()
        self._procs: list[BaseProcess] = []

    def start(self, target: Callable[..., None], *args: object) -> BaseProcess:
        proc = self.ctx.Process(target=target, args=args, daemon=True)
        proc.start()
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)


@pytest.fixture
def children() -> Iterator[Children]:
    """Start worker processes through this; none outlives the test."""
    kids = Children()
    yield kids
    kids.stop_all()


@pytest.fixture(params=["sqlite", "redis"])
def shared(request: pytest.FixtureRequest, fresh_emulator: Emulator, tmp_path: Path) -> SharedState:
    """One state for all processes: a SQLite file, or a real redis-server (SQLite to fall on)."""
    env = {
        "GEMINI_API_KEY": fresh_emulator.gemini_key,
        "GEMINI_BASE_URL": fresh_emulator.base_url,
        "LLM_PROVIDER_ORDER": "gemini",
        "LLM_AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"),
        "LLM_COST_LEDGER_PATH": str(tmp_path / "ledger.jsonl"),
        "LLM_STATE_PATH": str(tmp_path / "state" / "llm_state.sqlite3"),
    }
    server: RedisServer | None = None
    if request.param == "redis":
        server = request.getfixturevalue("own_redis_server")
        # A generous timeout: four busy processes on two cores must not look like an outage.
        env.update(REDIS_URL=server.url, REDIS_TIMEOUT_S="5")
    return SharedState(request.param, env, server)


def _describe(exc: BaseException) -> Outcome:
    return type(exc).__name__, str(exc)


def same_call_worker(
    env: dict[str, str], prompt: str, barrier: Barrier, out: Queue[tuple[str, str, bool]]
) -> None:
    """Build a client from `env`, wait for the others, ask `prompt` once, report the answer."""
    try:
        client = Client(Settings.from_env(env))
    except Exception as exc:
        out.put((*_describe(exc), False))
        return
    try:
        barrier.wait(timeout=WAIT_S)
        reply = client.generate(prompt, purpose="ops")
        out.put(("ok", reply.text, reply.dedupe_hit))
    except Exception as exc:
        out.put((*_describe(exc), False))
    finally:
        client.close()
        client.pipeline.store.close()


def caller_worker(
    env: dict[str, str],
    clock: Synchronized[float],
    inbox: Queue[str | None],
    outbox: Queue[Outcome],
) -> None:
    """Build a client on the shared clock; answer each prompt from `inbox` until None arrives."""
    try:
        settings = Settings.from_env(env)
        pipeline = CallPipeline(settings, clock=lambda: clock.value)
    except Exception as exc:
        outbox.put(_describe(exc))
        return
    outbox.put(("ready", pipeline.store.name))
    with Client(settings, pipeline=pipeline) as client:
        while (prompt := inbox.get(timeout=WAIT_S)) is not None:
            try:
                reply = client.generate(prompt, purpose="ops")
            except Exception as exc:
                outbox.put(_describe(exc))
            else:
                outbox.put(("ok", reply.provider))
    pipeline.store.close()


class Caller:
    """The test's handle on one long-lived worker process that makes calls when told to."""

    def __init__(self, children: Children, shared: SharedState, clock: Synchronized[float]) -> None:
        self._inbox: Queue[str | None] = children.ctx.Queue()
        self._outbox: Queue[Outcome] = children.ctx.Queue()
        self._proc = children.start(caller_worker, shared.env, clock, self._inbox, self._outbox)
        self.store_name = self._reply("ready")

    def call(self, prompt: str = "hello") -> Outcome:
        """Have the process make one call; its outcome."""
        self._inbox.put(prompt)
        return self._outbox.get(timeout=WAIT_S)

    def stop(self) -> None:
        self._inbox.put(None)
        self._proc.join(timeout=WAIT_S)
        assert self._proc.exitcode == 0

    def _reply(self, expected: str) -> str:
        kind, detail = self._outbox.get(timeout=WAIT_S)
        assert kind == expected, f"{kind}: {detail}"
        return detail


def _prompt_key(env: dict[str, str], prompt: str) -> str:
    """The store key of the cached answer to `prompt`, computed as the pipeline does."""
    settings = Settings.from_env(env)
    request = build_chat_request(
        prompt,
        messages=None,
        system=None,
        model=None,
        temperature=None,
        max_tokens=None,
        json_mode=False,
    )
    tags = resolve_tags(settings, purpose="ops")
    return "dedupe:" + dedupe_key(request, settings.providers["gemini"].model, tags)


@pytest.mark.timeout(90)
def test_identical_concurrent_calls_from_processes_reach_the_provider_once(
    shared: SharedState, fresh_emulator: Emulator, children: Children
) -> None:
    """4 processes asking the same thing at the same moment send one request; 3 are dedupe hits."""
    fresh_emulator.inject("gemini", "slow", times=1, delay_s=0.5)
    barrier = children.ctx.Barrier(PROCESSES)
    out: Queue[tuple[str, str, bool]] = children.ctx.Queue()
    for _ in range(PROCESSES):
        children.start(same_call_worker, shared.env, "same prompt", barrier, out)
    try:
        results = [out.get(timeout=WAIT_S) for _ in range(PROCESSES)]
    except queue.Empty:
        pytest.fail("a worker process reported nothing", pytrace=False)

    assert [r[0] for r in results] == ["ok"] * PROCESSES, results
    assert len({text for _, text, _ in results}) == 1
    assert sorted(hit for _, _, hit in results) == [False, True, True, True]
    assert fresh_emulator.request_count("gemini") == 1

    lines = shared.ledger()
    paid = [line for line in lines if not line["dedupe_hit"]]
    hits = [line for line in lines if line["dedupe_hit"]]
    assert len(paid) == 1
    assert paid[0]["actual_cost_usd"] > 0
    assert len(hits) == PROCESSES - 1
    for hit in hits:
        assert hit["actual_cost_usd"] == 0
        assert hit["saved_cost_usd"] == pytest.approx(paid[0]["actual_cost_usd"])
    audit_hits = shared.audit("llm_dedupe_hit")
    assert len(audit_hits) == PROCESSES - 1
    assert {e["original_request_id"] for e in audit_hits} == {paid[0]["request_id"]}
    assert len(shared.audit("llm_success")) == 1
    assert shared.audit("state_degraded") == []

    key = _prompt_key(shared.env, "same prompt")
    cached = shared.read(key)
    assert cached is not None
    answer = CachedAnswer.decode(cached)
    assert answer is not None
    assert answer.text == results[0][1]
    if shared.redis is not None:
        assert shared.read_file(key) is None  # Redis served it; the fallback file stayed unused


@pytest.mark.timeout(90)
def test_breaker_opened_by_one_process_is_open_for_another(
    shared: SharedState, fresh_emulator: Emulator, children: Children
) -> None:
    """A opens the breaker with a bad key; fresh B is refused unasked; after the cooldown B
    closes it with a probe and A calls through."""
    shared = shared.with_env(
        LLM_DEDUPE="false",
        LLM_BREAKER_FAILURE_THRESHOLD="2",
        LLM_BREAKER_COOLDOWN_S=str(COOLDOWN_S),
    )
    clock: Synchronized[float] = children.ctx.Value("d", 1_800_000_000.0)
    fresh_emulator.inject("gemini", "bad_key")

    a = Caller(children, shared, clock)
    assert a.store_name == shared.backend
    failures = []
    for _ in range(5):
        failures.append(a.call())
        if shared.audit("breaker_open"):
            break
    assert [kind for kind, _ in failures] == ["AuthenticationError"] * 2
    opened = shared.audit("breaker_open")
    assert len(opened) == 1
    assert "2 consecutive failures" in opened[0]["reason"]
    assert BreakerState.decode(shared.read("breaker:gemini")).state == "open"
    sent = fresh_emulator.request_count("gemini")
    assert sent == 2

    b = Caller(children, shared, clock)
    kind, message = b.call()
    assert kind == "NoProviderAvailableError"
    assert "breaker open" in message
    assert fresh_emulator.request_count("gemini") == sent  # B sent nothing

    fresh_emulator.clear_faults()
    with clock.get_lock():
        clock.value += COOLDOWN_S + 1
    assert b.call() == ("ok", "gemini")  # B's call is the probe that closes the breaker
    assert len(shared.audit("breaker_half_open")) == 1
    closed = shared.audit("breaker_closed")
    assert len(closed) == 1
    assert closed[0]["open_duration_s"] == pytest.approx(COOLDOWN_S + 1, abs=1)
    assert a.call() == ("ok", "gemini")
    assert fresh_emulator.request_count("gemini") == sent + 2
    assert BreakerState.decode(shared.read("breaker:gemini")).state == "closed"
    assert len(shared.audit("breaker_open")) == 1
    assert shared.audit("state_degraded") == []
    if shared.redis is not None:
        assert shared.read_file("breaker:gemini") is None
    a.stop()
    b.stop()
