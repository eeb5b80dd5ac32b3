"""`Client` and `AsyncClient` against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import nexus_llm
from nexus_llm import AsyncClient, Client, Settings
from nexus_llm.emulator import Emulator
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
from tests.support import emulator_settings, jsonl_lines


def settings_for(emulator: Emulator, tmp_path: Path, **extra: str) -> Settings:
    return emulator_settings(emulator, tmp_path, "gemini", **extra)


lines = jsonl_lines


class TestSuccess:
    def test_usage_cost_and_files(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """A call returns the emulator's text and usage, priced, and writes both files."""
        fresh_emulator.configure("gemini", thoughts_tokens=20, cached_tokens=2)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            reply = client.generate("Summarise: the disk is full.", purpose="ops", team="sre")
        assert reply.provider == "gemini"
        assert reply.text.startswith("Emulated gemini reply")
        # words and punctuation: Summarise : the disk is full . → 7 prompt tokens
        assert reply.usage.input_tokens == 7
        assert reply.usage.cached_tokens == 2
        assert reply.usage.reasoning_tokens == 20
        visible = reply.usage.output_tokens - 20
        expected = ((7 - 2) * 0.30 + 2 * 0.03 + (visible + 20) * 2.50) / 1e6
        assert reply.cost_usd == pytest.approx(expected)
        assert not reply.approx_tokens
        audit = lines(settings.audit_log_path)
        ledger = lines(settings.cost_ledger_path)
        assert [e["event"] for e in audit] == ["llm_success"]
        assert ledger[0]["team"] == "sre"
        assert ledger[0]["reasoning_tokens"] == 20
        assert ledger[0]["actual_cost_usd"] == pytest.approx(expected)
        assert fresh_emulator.request_count("gemini") == 1

    def test_missing_usage_is_estimated_and_flagged(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """Without a usage block the ledger says approx_tokens and still prices the call."""
        fresh_emulator.inject("gemini", "omit_usage")
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            reply = client.generate("hello there", purpose="ops")
        assert reply.approx_tokens
        line = lines(settings.cost_ledger_path)[0]
        assert line["approx_tokens"] is True
        assert line["input_tokens"] == 3  # ceil(11 chars / 4)
        assert isinstance(line["actual_cost_usd"], float)
        assert line["actual_cost_usd"] > 0

    def test_context_tags_reach_the_ledger(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """Tags set by nexus_llm.tags() land in the ledger line."""
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client, nexus_llm.tags(team="ops", project="finops"):
            client.generate("tag test", purpose="ops")
        line = lines(settings.cost_ledger_path)[0]
        assert (line["team"], line["project"], line["purpose"]) == ("ops", "finops", "ops")


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
        fresh_emulator.inject("gemini", kind, times=1, retry_after_s=1.5)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client, pytest.raises(error) as caught:
            client.generate("hello", purpose="ops")
        assert type(caught.value) is error
        audit = lines(settings.audit_log_path)
        assert audit[-1]["event"] == "llm_error"
        assert audit[-1]["error_type"] == error_type
        assert audit[-1]["request_id"] == caught.value.request_id
        assert lines(settings.cost_ledger_path) == []
        assert fresh_emulator.gemini_key not in settings.audit_log_path.read_text()

    def test_rate_limit_carries_the_retry_hint(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """Gemini's RetryInfo reaches RateLimitError.retry_after_s and the audit line."""
        fresh_emulator.inject("gemini", "rate_limit", times=1, retry_after_s=1.5)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client, pytest.raises(RateLimitError) as caught:
            client.generate("hello", purpose="ops")
        assert caught.value.retry_after_s == pytest.approx(1.5)
        assert caught.value.retryable
        assert lines(settings.audit_log_path)[-1]["retry_after_s"] == pytest.approx(1.5)

    def test_timeout_is_a_timeout_error(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """A provider that never answers raises ProviderTimeoutError after LLM_TIMEOUT_S."""
        fresh_emulator.inject("gemini", "timeout", times=1)
        settings = settings_for(fresh_emulator, tmp_path, LLM_TIMEOUT_S="0.3")
        with Client(settings) as client, pytest.raises(ProviderTimeoutError):
            client.generate("hello", purpose="ops")

    def test_fault_expires_and_the_next_call_succeeds(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """After a one-shot fault the same client recovers on its next call."""
        fresh_emulator.inject("gemini", "server_error", times=1)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings) as client:
            with pytest.raises(ServerError):
                client.generate("hello", purpose="ops")
            assert client.generate("hello", purpose="ops").finish_reason == "STOP"
        assert [e["event"] for e in lines(settings.audit_log_path)] == ["llm_error", "llm_success"]


class TestAsyncClient:
    def test_many_concurrent_calls_on_one_loop(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """200 concurrent calls with different tags each write their own, correct ledger line."""
        settings = settings_for(fresh_emulator, tmp_path)

        async def one(client: AsyncClient, n: int) -> str:
            with nexus_llm.tags(team=f"team-{n % 7}"):
                reply = await client.generate(f"question {n}", purpose="load")
            return reply.request_id

        async def main() -> list[str]:
            async with AsyncClient(settings) as client:
                return await asyncio.gather(*(one(client, n) for n in range(200)))

        ids = asyncio.run(main())
        ledger = lines(settings.cost_ledger_path)
        assert len(ledger) == 200
        assert {line["request_id"] for line in ledger} == set(ids)
        by_id = {line["request_id"]: line for line in ledger}
        for n, request_id in enumerate(ids):
            assert by_id[request_id]["team"] == f"team-{n % 7}"
        assert fresh_emulator.request_count("gemini") == 200
