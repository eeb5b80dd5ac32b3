"""`LLM_CALL_DEADLINE_S` bounds the whole call, failover included (README: "for one call,
retries included"), on a fake clock that only the client's sleeps move."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.errors import NexusError
from nexus_llm.pipeline import CallPipeline
from nexus_llm.providers import gemini as gemini_module
from nexus_llm.state import MemoryStore
from tests.support import FakeClock

DEADLINE_S = 10.0
HINT_S = 4.0  # every 429 asks for 4 s: waits are exact whatever the jitter draws


@pytest.fixture
def two_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let 'openai' speak Gemini's protocol to the emulator, to have a second provider."""
    from nexus_llm import pipeline

    adapter = gemini_module.GeminiAdapter()
    monkeypatch.setattr(
        pipeline, "adapter_for", lambda name: adapter if name in ("gemini", "openai") else None
    )


@pytest.mark.usefixtures("two_providers")
def test_failover_does_not_restart_the_call_deadline(
    fresh_emulator: Emulator, tmp_path: Path, fake_clock: FakeClock
) -> None:
    """Retries on the second provider stop where the call's deadline ends, not a new one."""
    fresh_emulator.inject("gemini", "rate_limit", times=5, retry_after_s=HINT_S)
    settings = Settings.from_env(
        {
            "GEMINI_API_KEY": fresh_emulator.gemini_key,
            "GEMINI_BASE_URL": fresh_emulator.base_url,
            "OPENAI_API_KEY": fresh_emulator.gemini_key,
            "OPENAI_BASE_URL": fresh_emulator.base_url,
            "OPENAI_MODEL": "gemini-2.5-flash",
            "LLM_PROVIDER_ORDER": "gemini,openai",
            "LLM_AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"),
            "LLM_COST_LEDGER_PATH": str(tmp_path / "ledger.jsonl"),
            "LLM_DEDUPE": "false",
            "LLM_CALL_DEADLINE_S": str(DEADLINE_S),
        }
    )
    pipeline = CallPipeline(
        settings,
        store=MemoryStore(clock=fake_clock),
        monotonic=fake_clock,
        clock=fake_clock,
        rng=random.Random(7),
    )
    started = fake_clock()
    # Giving up at the deadline is a right outcome; running past it is not.
    with (
        Client(settings, pipeline=pipeline, sleep=fake_clock.advance) as client,
        contextlib.suppress(NexusError),
    ):
        client.generate("hello", purpose="ops")
    # gemini: 429 at t=0, 4, 8 (3 attempts), then openai from t=8: one more wait of 4 s would
    # end at t=12, past the 10 s deadline, so it must not be waited.
    elapsed = fake_clock() - started
    assert elapsed <= DEADLINE_S, (
        f"the call ran {elapsed:.0f} s on a {DEADLINE_S:.0f} s LLM_CALL_DEADLINE_S: "
        "the deadline restarted when the call failed over to the next provider"
    )
