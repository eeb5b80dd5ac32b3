"""`Client` and `AsyncClient` on Anthropic, against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nexus_llm import AsyncClient, Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.emulator._gemini import count_tokens
from nexus_llm.errors import (
    AuthenticationError,
    MalformedResponseError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from nexus_llm.providers.anthropic import JSON_INSTRUCTION
from tests.support import emulator_settings, jsonl_lines

MODEL = "claude-haiku-4-5"
# claude-haiku-4-5 in nexus_llm/prices.json, USD per 1M tokens.
IN, OUT, CACHE_READ = 1.00, 5.00, 0.10


def settings_for(emulator: Emulator, tmp_path: Path, **extra: str) -> Settings:
    return emulator_settings(emulator, tmp_path, "anthropic", ANTHROPIC_MODEL=MODEL, **extra)


lines = jsonl_lines


class TestSuccess:
    def test_usage_cost_and_files(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """A call returns the emulator's text and usage, priced by hand, and writes both files."""
        fresh_emulator.configure("anthropic", thoughts_tokens=20, cached_tokens=2)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            reply = client.generate("Summarise: the disk is full.", purpose="ops", team="sre")
        assert reply.provider == "anthropic"
        assert reply.model == MODEL
        assert reply.text == "Emulated anthropic reply to 7 prompt tokens."  # no thinking text
        assert reply.finish_reason == "end_turn"
        assert reply.response_id is not None
        assert reply.response_id.startswith("msg_01")
        # Summarise : the disk is full . → 7 prompt tokens, 2 of them read from cache;
        # the reply is 8 tokens, plus 20 thinking tokens.
        usage = reply.usage
        assert (usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens) == (7, 2, 0)
        assert (usage.output_tokens, usage.reasoning_tokens) == (28, 20)
        expected = ((7 - 2) * IN + 2 * CACHE_READ + 28 * OUT) / 1e6
        assert reply.cost_usd == pytest.approx(expected)
        assert not reply.approx_tokens
        audit = lines(settings.audit_log_path)
        ledger = lines(settings.cost_ledger_path)
        assert [e["event"] for e in audit] == ["llm_success"]
        assert audit[0]["finish_reason"] == "end_turn"
        assert len(ledger) == 1
        assert (ledger[0]["provider"], ledger[0]["model"], ledger[0]["team"]) == (
            "anthropic",
            MODEL,
            "sre",
        )
        assert (ledger[0]["input_tokens"], ledger[0]["cached_tokens"]) == (7, 2)
        assert (ledger[0]["output_tokens"], ledger[0]["reasoning_tokens"]) == (28, 20)
        assert ledger[0]["actual_cost_usd"] == pytest.approx(expected)
        assert fresh_emulator.request_count("anthropic") == 1

    def test_system_temperature_and_json_mode_are_accepted(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """The pinned version keeps temperature valid; json_mode's instruction joins the system."""
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            reply = client.generate(
                "Classify: disk full on node-3",
                system="Be terse.",
                temperature=0.2,
                json_mode=True,
                purpose="ops",
            )
        system = f"Be terse.\n\n{JSON_INSTRUCTION}"
        prompt = count_tokens(system) + count_tokens("Classify: disk full on node-3")
        assert reply.usage.input_tokens == prompt
        assert reply.text == f"Emulated anthropic reply to {prompt} prompt tokens."

    def test_turns_keep_their_roles(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """A multi-turn conversation with an assistant turn is accepted and fully counted."""
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            reply = client.generate(
                messages=[("user", "one"), ("assistant", "two"), ("user", "three four")],
                purpose="ops",
            )
        assert reply.usage.input_tokens == 4

    def test_max_tokens_cuts_the_reply(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """A small max_tokens gives the cut text and finish reason max_tokens."""
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            reply = client.generate("hello", max_tokens=3, purpose="ops")
        assert (reply.text, reply.finish_reason) == ("Emulated anthropic reply", "max_tokens")
        assert reply.usage.output_tokens == 3

    def test_missing_usage_is_estimated_and_flagged(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """Without a usage object the ledger says approx_tokens and prices the estimate."""
        fresh_emulator.inject("anthropic", "omit_usage", times=1)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            reply = client.generate("hello there", purpose="ops")
        assert reply.approx_tokens
        text = "Emulated anthropic reply to 2 prompt tokens."
        assert reply.text == text
        estimated_out = -(-len(text) // 4)
        line = lines(settings.cost_ledger_path)[0]
        assert line["approx_tokens"] is True
        assert line["input_tokens"] == 3  # ceil(11 chars / 4)
        assert line["output_tokens"] == estimated_out
        assert line["actual_cost_usd"] == pytest.approx((3 * IN + estimated_out * OUT) / 1e6)


FAULTS: list[tuple[str, type[ProviderError], str]] = [
    ("bad_key", AuthenticationError, "auth"),
    ("rate_limit", RateLimitError, "rate_limit"),
    ("quota_daily", QuotaExhaustedError, "quota_exhausted"),
    ("server_error", ServerError, "server"),
    ("unavailable", OverloadedError, "overloaded"),
    ("reset", ProviderConnectionError, "connection"),
    ("malformed_json", MalformedResponseError, "malformed_response"),
    ("truncated", ProviderConnectionError, "connection"),
]


class TestFaults:
    @pytest.mark.parametrize(("kind", "error", "error_type"), FAULTS)
    def test_fault_becomes_a_typed_error_and_an_audit_line(
        self,
        fresh_emulator: Emulator,
        tmp_path: Path,
        kind: str,
        error: type[ProviderError],
        error_type: str,
    ) -> None:
        """Each injected fault surfaces as its typed error, audited, with no ledger line."""
        fresh_emulator.inject("anthropic", kind, times=1)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client, pytest.raises(error) as caught:
            client.generate("hello", purpose="ops")
        assert type(caught.value) is error
        assert caught.value.provider == "anthropic"
        audit = lines(settings.audit_log_path)
        assert audit[-1]["event"] == "llm_error"
        assert audit[-1]["error_type"] == error_type
        assert audit[-1]["request_id"] == caught.value.request_id
        assert lines(settings.cost_ledger_path) == []
        assert fresh_emulator.key_for("anthropic") not in settings.audit_log_path.read_text()
        assert fresh_emulator.request_count("anthropic") == 1

    @pytest.mark.parametrize(("retry_after_s", "hint"), [(3.0, 3.0), (1.5, 2.0)])
    def test_rate_limit_carries_retry_after(
        self, fresh_emulator: Emulator, tmp_path: Path, retry_after_s: float, hint: float
    ) -> None:
        """The retry-after header (whole seconds) reaches RateLimitError and the audit line."""
        fresh_emulator.inject("anthropic", "rate_limit", times=1, retry_after_s=retry_after_s)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client, pytest.raises(RateLimitError) as caught:
            client.generate("hello", purpose="ops")
        assert caught.value.retry_after_s == hint
        assert caught.value.provider_code == "rate_limit_error"
        assert lines(settings.audit_log_path)[-1]["retry_after_s"] == hint

    def test_spend_cap_is_not_retried(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """With retries on, the spend cap is tried once: nothing helps until next month."""
        fresh_emulator.inject("anthropic", "quota_daily")
        settings = settings_for(fresh_emulator, tmp_path, LLM_RETRY_MAX_ATTEMPTS="3")
        with Client(settings) as client, pytest.raises(QuotaExhaustedError):
            client.generate("hello", purpose="ops")
        assert fresh_emulator.request_count("anthropic") == 1

    def test_timeout_is_a_timeout_error(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """A provider that never answers raises ProviderTimeoutError after LLM_TIMEOUT_S."""
        fresh_emulator.inject("anthropic", "timeout", times=1)
        settings = settings_for(fresh_emulator, tmp_path, LLM_TIMEOUT_S="0.3")
        with Client(settings) as client, pytest.raises(ProviderTimeoutError):
            client.generate("hello", purpose="ops")

    def test_fault_expires_and_the_next_call_succeeds(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """After a one-shot 529 the same client recovers on its next call."""
        fresh_emulator.inject("anthropic", "unavailable", times=1)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            with pytest.raises(OverloadedError):
                client.generate("hello", purpose="ops")
            assert client.generate("hello", purpose="ops").finish_reason == "end_turn"
        assert [e["event"] for e in lines(settings.audit_log_path)] == ["llm_error", "llm_success"]


class TestAsyncClient:
    def test_concurrent_calls_each_write_a_ledger_line(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """50 concurrent Anthropic calls on one loop each write their own priced ledger line."""
        settings = settings_for(fresh_emulator, tmp_path)

        async def main() -> list[str]:
            async with AsyncClient(settings) as client:
                replies = await asyncio.gather(
                    *(client.generate(f"question {n}", purpose="load") for n in range(50))
                )
            return [reply.request_id for reply in replies]

        ids = asyncio.run(main())
        ledger = lines(settings.cost_ledger_path)
        assert {line["request_id"] for line in ledger} == set(ids)
        assert {line["provider"] for line in ledger} == {"anthropic"}
        # "question N" is 2 tokens; the reply "Emulated anthropic reply to 2 prompt tokens." is 8.
        cost = (2 * IN + 8 * OUT) / 1e6
        assert all(line["actual_cost_usd"] == pytest.approx(cost) for line in ledger)
        assert fresh_emulator.request_count("anthropic") == 50
