"""Retry, circuit breaker, failover and dedupe, end to end against the emulator over HTTP.

Time is controlled: a fake clock drives the pipeline's wall clock, its monotonic clock and the
client's sleep, so backoff waits and cooldowns are asserted, never slept through.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from nexus_llm import Client, NoProviderAvailableError, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.errors import AuthenticationError, OverloadedError, RateLimitError
from nexus_llm.pipeline import CallPipeline
from nexus_llm.providers import gemini as gemini_module
from nexus_llm.state import MemoryStore


class FakeTime:
    """One clock for wall time, monotonic time and sleep."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_settings(emulator: Emulator, tmp_path: Path, **extra: str) -> Settings:
    env = {
        "GEMINI_API_KEY": emulator.gemini_key,
        "GEMINI_BASE_URL": emulator.base_url,
        "LLM_PROVIDER_ORDER": "gemini",
        "LLM_AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"),
        "LLM_COST_LEDGER_PATH": str(tmp_path / "ledger.jsonl"),
        "LLM_RETRY_BASE_S": "1",
        "LLM_RETRY_MAX_DELAY_S": "20",
        **extra,
    }
    return Settings.from_env(env)


def make_client(settings: Settings, clock: FakeTime, store: MemoryStore | None = None) -> Client:
    store = store or MemoryStore(clock=clock.wall)
    pipeline = CallPipeline(
        settings, store=store, monotonic=clock.mono, clock=clock.wall, rng=random.Random(7)
    )
    return Client(settings, pipeline=pipeline, sleep=clock.sleep)


def events(settings: Settings, name: str | None = None) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in settings.audit_log_path.read_text().splitlines()]
    return [e for e in lines if name is None or e["event"] == name]


def ledger(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(line) for line in settings.cost_ledger_path.read_text().splitlines()]


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


class TestRetry:
    def test_retries_overload_then_succeeds_with_backoff(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """Two 503s are retried with jittered, growing waits; the third attempt answers."""
        fresh_emulator.inject("gemini", "unavailable", times=2)
        settings = make_settings(fresh_emulator, tmp_path, LLM_DEDUPE="false")
        with make_client(settings, clock) as client:
            reply = client.generate("hello", purpose="ops")
        assert reply.finish_reason == "STOP"
        assert fresh_emulator.request_count("gemini") == 3
        retries = events(settings, "llm_retry")
        assert [r["attempt"] for r in retries] == [1, 2]
        assert all(r["reason"] == "overloaded" for r in retries)
        assert [round(s, 3) for s in clock.slept] == [r["wait_s"] for r in retries]
        assert 0 <= clock.slept[0] <= 1.0  # full jitter over base * 2**0
        assert 0 <= clock.slept[1] <= 2.0  # ... over base * 2**1
        assert events(settings, "llm_success")[0]["attempt"] == 3

    def test_retry_info_is_a_floor_for_the_wait(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """Gemini's RetryInfo of 3 s makes the wait at least 3 s, whatever the jitter drew."""
        fresh_emulator.inject("gemini", "rate_limit", times=1, retry_after_s=3)
        settings = make_settings(fresh_emulator, tmp_path, LLM_DEDUPE="false")
        with make_client(settings, clock) as client:
            client.generate("hello", purpose="ops")
        assert clock.slept == [3.0]
        assert events(settings, "llm_retry")[0]["retry_after_s"] == 3.0

    def test_auth_errors_are_not_retried(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """A rejected key fails at once: one request, no wait."""
        fresh_emulator.inject("gemini", "bad_key")
        settings = make_settings(fresh_emulator, tmp_path, LLM_DEDUPE="false")
        with make_client(settings, clock) as client, pytest.raises(AuthenticationError):
            client.generate("hello", purpose="ops")
        assert fresh_emulator.request_count("gemini") == 1
        assert clock.slept == []

    def test_attempts_are_bounded(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """With a lasting outage the call gives up after LLM_RETRY_MAX_ATTEMPTS."""
        fresh_emulator.inject("gemini", "unavailable")
        settings = make_settings(
            fresh_emulator, tmp_path, LLM_DEDUPE="false", LLM_RETRY_MAX_ATTEMPTS="4"
        )
        with make_client(settings, clock) as client, pytest.raises(OverloadedError):
            client.generate("hello", purpose="ops")
        assert fresh_emulator.request_count("gemini") == 4
        assert len(events(settings, "llm_retry")) == 3

    def test_deadline_bounds_the_waits(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """A hint that would pass the call deadline is not waited for."""
        fresh_emulator.inject("gemini", "rate_limit", retry_after_s=5)
        settings = make_settings(
            fresh_emulator, tmp_path, LLM_DEDUPE="false", LLM_CALL_DEADLINE_S="4"
        )
        with make_client(settings, clock) as client, pytest.raises(RateLimitError):
            client.generate("hello", purpose="ops")
        assert fresh_emulator.request_count("gemini") == 1
        assert clock.slept == []


class TestBreaker:
    def test_open_half_open_closed(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """Failures open the breaker, calls stop reaching the provider, a probe closes it."""
        fresh_emulator.inject("gemini", "bad_key")
        settings = make_settings(
            fresh_emulator,
            tmp_path,
            LLM_DEDUPE="false",
            LLM_BREAKER_FAILURE_THRESHOLD="2",
            LLM_BREAKER_COOLDOWN_S="30",
        )
        with make_client(settings, clock) as client:
            for _ in range(2):
                with pytest.raises(AuthenticationError):
                    client.generate("hello", purpose="ops")
            opened = events(settings, "breaker_open")
            assert len(opened) == 1
            assert "2 consecutive failures" in opened[0]["reason"]
            with pytest.raises(NoProviderAvailableError, match="breaker open"):
                client.generate("hello", purpose="ops")
            assert fresh_emulator.request_count("gemini") == 2  # the open breaker sent nothing
            fresh_emulator.clear_faults()  # the provider recovers
            clock.now += 31
            assert client.generate("hello", purpose="ops").finish_reason == "STOP"
            assert client.generate("hello again", purpose="ops").finish_reason == "STOP"
        assert len(events(settings, "breaker_half_open")) == 1
        closed = events(settings, "breaker_closed")
        assert len(closed) == 1
        assert closed[0]["open_duration_s"] == pytest.approx(31, abs=1)
        assert fresh_emulator.request_count("gemini") == 4

    def test_failed_probe_reopens(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """A probe that fails opens the breaker again for another cooldown."""
        fresh_emulator.inject("gemini", "bad_key")
        settings = make_settings(
            fresh_emulator,
            tmp_path,
            LLM_DEDUPE="false",
            LLM_BREAKER_FAILURE_THRESHOLD="1",
            LLM_BREAKER_COOLDOWN_S="10",
        )
        with make_client(settings, clock) as client:
            with pytest.raises(AuthenticationError):
                client.generate("hello", purpose="ops")
            clock.now += 11
            with pytest.raises(AuthenticationError):
                client.generate("hello", purpose="ops")  # the probe
            with pytest.raises(NoProviderAvailableError):
                client.generate("hello", purpose="ops")
        reasons = [e["reason"] for e in events(settings, "breaker_open")]
        assert len(reasons) == 2
        assert reasons[1].startswith("probe failed")

    def test_a_lost_probe_never_wedges_the_breaker(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """If a probe's process dies, the next caller probes once the probe slot expires."""
        settings = make_settings(
            fresh_emulator,
            tmp_path,
            LLM_DEDUPE="false",
            LLM_CALL_DEADLINE_S="20",
            LLM_BREAKER_FAILURE_THRESHOLD="1",
            LLM_BREAKER_COOLDOWN_S="10",
        )
        client = make_client(settings, clock)
        breaker = client.pipeline.breakers["gemini"]
        breaker.record_failure("timeout")
        clock.now += 11
        assert breaker.admit()[0] == "probe"  # ... and that caller vanishes
        assert breaker.admit()[0] == "denied"
        clock.now += 21
        assert client.generate("hello", purpose="ops").finish_reason == "STOP"
        assert breaker.current().state == "closed"
        client.close()

    def test_request_errors_do_not_open_the_breaker(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """An unknown model (404) is the caller's mistake and never trips the breaker."""
        settings = make_settings(
            fresh_emulator,
            tmp_path,
            LLM_DEDUPE="false",
            LLM_BREAKER_FAILURE_THRESHOLD="1",
            GEMINI_MODEL="claude-in-disguise",
        )
        with make_client(settings, clock) as client:
            for _ in range(3):
                with pytest.raises(Exception, match="not found"):
                    client.generate("hello", purpose="ops")
        assert events(settings, "breaker_open") == []
        assert fresh_emulator.request_count("gemini") == 3


class TestFailover:
    @pytest.fixture
    def two_providers(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Let 'openai' speak Gemini's protocol to the emulator, to have a second provider."""
        from nexus_llm import pipeline

        adapter = gemini_module.GeminiAdapter()
        monkeypatch.setattr(
            pipeline, "adapter_for", lambda name: adapter if name in ("gemini", "openai") else None
        )

    @pytest.mark.usefixtures("two_providers")
    def test_fails_over_and_returns(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """A provider rejecting its key hands calls to the next; once fixed it is used again."""
        settings = make_settings(
            fresh_emulator,
            tmp_path,
            LLM_DEDUPE="false",
            LLM_PROVIDER_ORDER="gemini,openai",
            GEMINI_API_KEY="wrong-key-1",
            OPENAI_API_KEY=fresh_emulator.gemini_key,
            OPENAI_BASE_URL=fresh_emulator.base_url,
            OPENAI_MODEL="gemini-2.5-flash",
            LLM_BREAKER_FAILURE_THRESHOLD="1",
            LLM_BREAKER_COOLDOWN_S="30",
        )
        store = MemoryStore(clock=clock.wall)
        with make_client(settings, clock, store) as client:
            first = client.generate("hello", purpose="ops")
            second = client.generate("hello", purpose="ops")  # gemini's breaker is open now
        assert (first.provider, second.provider) == ("openai", "openai")
        fallbacks = events(settings, "llm_fallback")
        assert [f["reason"] for f in fallbacks] == ["auth", "breaker_open"]
        assert fresh_emulator.request_count("gemini") == 3  # 2 answered + 1 rejected

        # The key is fixed; the same shared breaker state still says open until the cooldown.
        fixed = settings.with_provider("gemini", api_key=settings.providers["openai"].api_key)
        with make_client(fixed, clock, store) as client:
            assert client.generate("hello", purpose="ops").provider == "openai"
            clock.now += 31
            assert client.generate("hello", purpose="ops").provider == "gemini"  # the probe
            assert client.generate("hello", purpose="ops").provider == "gemini"
        assert len(events(settings, "breaker_closed")) == 1

    @pytest.mark.usefixtures("two_providers")
    def test_none_left_names_each_provider(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """With every provider failing, the error names each one and why."""
        fresh_emulator.inject("gemini", "bad_key")
        settings = make_settings(
            fresh_emulator,
            tmp_path,
            LLM_DEDUPE="false",
            LLM_PROVIDER_ORDER="gemini,openai",
            OPENAI_API_KEY="k-2",
            OPENAI_BASE_URL=fresh_emulator.base_url,
            OPENAI_MODEL="gemini-2.5-flash",
        )
        with make_client(settings, clock) as client, pytest.raises(NoProviderAvailableError) as err:
            client.generate("hello", purpose="ops")
        text = str(err.value)
        assert "gemini:" in text
        assert "openai:" in text
        assert "API key not valid" in text


class TestDedupe:
    def test_second_identical_call_is_a_hit(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """The repeat is served from the cache: no request, a zero-cost ledger line, savings."""
        settings = make_settings(fresh_emulator, tmp_path)
        with make_client(settings, clock) as client:
            paid = client.generate("same prompt", purpose="ops")
            hit = client.generate("same prompt", purpose="ops")
        assert not paid.dedupe_hit
        assert hit.dedupe_hit
        assert hit.text == paid.text
        assert hit.cost_usd == 0
        assert fresh_emulator.request_count("gemini") == 1
        lines = ledger(settings)
        assert lines[1]["dedupe_hit"] is True
        assert lines[1]["actual_cost_usd"] == 0
        assert lines[1]["saved_cost_usd"] == pytest.approx(paid.cost_usd)
        audit_hit = events(settings, "llm_dedupe_hit")[0]
        assert audit_hit["original_request_id"] == paid.request_id
        assert "same prompt" not in settings.audit_log_path.read_text()

    def test_ttl_expiry_and_key_parts(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """After the TTL, or for another team, purpose or option, the provider is asked again."""
        settings = make_settings(fresh_emulator, tmp_path, LLM_DEDUPE_TTL_S="60")
        with make_client(settings, clock) as client:
            client.generate("q", purpose="ops")
            assert client.generate("q", purpose="ops").dedupe_hit
            assert not client.generate("q", purpose="ops", team="other").dedupe_hit
            assert not client.generate("q", purpose="billing").dedupe_hit
            assert not client.generate("q", purpose="ops", temperature=0.5).dedupe_hit
            assert not client.generate("q", purpose="ops", dedupe=False).dedupe_hit
            clock.now += 61
            assert not client.generate("q", purpose="ops").dedupe_hit
        assert fresh_emulator.request_count("gemini") == 6

    def test_errors_are_not_cached(
        self, fresh_emulator: Emulator, tmp_path: Path, clock: FakeTime
    ) -> None:
        """A failed call leaves nothing behind: the next identical call asks the provider."""
        fresh_emulator.inject("gemini", "bad_key", times=1)
        settings = make_settings(fresh_emulator, tmp_path)
        with make_client(settings, clock) as client:
            with pytest.raises(AuthenticationError):
                client.generate("q", purpose="ops")
            assert not client.generate("q", purpose="ops").dedupe_hit
        assert fresh_emulator.request_count("gemini") == 2

    def test_singleflight_in_one_process(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """Eight identical calls at once send one request; the others wait for its answer."""
        fresh_emulator.inject("gemini", "slow", times=1, delay_s=0.4)
        settings = make_settings(fresh_emulator, tmp_path)
        results: list[bool] = []
        with Client(settings, pipeline=CallPipeline(settings, store=MemoryStore())) as client:
            barrier = threading.Barrier(8)

            def call() -> None:
                barrier.wait()
                results.append(client.generate("together", purpose="ops").dedupe_hit)

            threads = [threading.Thread(target=call) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        assert sorted(results) == [False] + [True] * 7
        assert fresh_emulator.request_count("gemini") == 1
        kinds = {e["kind"] for e in events(settings, "llm_dedupe_hit")}
        assert "in_flight" in kinds


class LateAnswerStore(MemoryStore):
    """Hides the cached answer from the first lookup: the answer lands between a waiter's
    lookup and its claim, the interleaving that once sent a second request."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden_once = False

    def get(self, key: str) -> bytes | None:
        if key.startswith("dedupe:") and not self.hidden_once:
            self.hidden_once = True
            return None
        return super().get(key)


def test_answer_landing_between_lookup_and_claim_is_still_a_hit(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    """A caller that wins the lock after the first caller finished re-checks the cache first."""
    settings = make_settings(fresh_emulator, tmp_path)
    store = LateAnswerStore()
    with Client(settings, pipeline=CallPipeline(settings, store=MemoryStore())) as first:
        answer = first.generate("late", purpose="ops")
        key = next(k for k in first.pipeline.store._data if k.startswith("dedupe:"))  # type: ignore[attr-defined]
        raw = first.pipeline.store.get(key)
    assert raw is not None
    store.put(key, raw, ttl_s=60)
    with Client(settings, pipeline=CallPipeline(settings, store=store)) as second:
        reply = second.generate("late", purpose="ops")
    assert store.hidden_once
    assert reply.dedupe_hit
    assert reply.text == answer.text
    assert fresh_emulator.request_count("gemini") == 1


class TestStoreTrouble:
    def test_unusable_state_file_degrades_to_memory(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A state file that cannot be opened never fails a call: memory serves, said once."""
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where a directory should be")
        settings = make_settings(
            fresh_emulator, tmp_path, LLM_STATE_PATH=str(blocker / "state.sqlite3")
        )
        with Client(settings) as client:
            first = client.generate("q", purpose="ops")
            second = client.generate("q", purpose="ops")
        assert not first.dedupe_hit
        assert second.dedupe_hit  # dedupe still works, in this process's memory
        degraded = events(settings, "state_degraded")
        assert len(degraded) == 1
        assert degraded[0]["backend"] == "sqlite"
        assert degraded[0]["fallback"] == "memory"

    def test_unparsable_redis_url_is_a_config_error(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A REDIS_URL redis-py cannot parse is a one-line ConfigError that hides the URL."""
        from nexus_llm import ConfigError

        settings = make_settings(
            fresh_emulator, tmp_path, REDIS_URL="redis://user:s3cret@127.0.0.1:notaport/0"
        )
        with pytest.raises(ConfigError) as caught:
            Client(settings)
        assert "REDIS_URL" in str(caught.value)
        assert "s3cret" not in str(caught.value)
