"""`Client` against the emulated OpenAI and GLM over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.emulator._openai_errors import mask
from nexus_llm.errors import (
    AuthenticationError,
    BadRequestError,
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

PROMPT = "Summarise: the disk is full."  # Summarise : the disk is full . → 7 prompt tokens
VARIABLE = {"openai": "OPENAI", "glm": "GLM"}


def settings_for(emulator: Emulator, tmp_path: Path, provider: str, **extra: str) -> Settings:
    return emulator_settings(emulator, tmp_path, provider, **extra)


lines = jsonl_lines


class TestSuccess:
    """Successful calls: text, usage and the priced ledger line."""

    def test_openai_usage_and_cost(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """gpt-4o-mini: cached and reasoning tokens reach the ledger, priced by hand."""
        fresh_emulator.configure("openai", thoughts_tokens=20, cached_tokens=2)
        settings = settings_for(fresh_emulator, tmp_path, "openai")
        with Client(settings) as client:
            reply = client.generate(PROMPT, purpose="ops", team="sre")
        assert reply.provider == "openai"
        assert reply.model == "gpt-4o-mini"
        assert reply.text == "Emulated openai reply to 7 prompt tokens."
        assert reply.finish_reason == "stop"
        assert reply.response_id is not None
        assert reply.response_id.startswith("chatcmpl-")
        # 8 visible tokens (Emulated openai reply to 7 prompt tokens .) + 20 reasoning
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, 28)
        assert (reply.usage.cached_tokens, reply.usage.reasoning_tokens) == (2, 20)
        # (7 - 2) × $0.15 + 2 × $0.075 (cached) + 28 × $0.60, per 1M tokens
        expected = (5 * 0.15 + 2 * 0.075 + 28 * 0.60) / 1e6
        assert expected == pytest.approx(17.7e-6)
        assert reply.cost_usd == pytest.approx(expected)
        assert not reply.approx_tokens
        line = lines(settings.cost_ledger_path)[0]
        assert (line["provider"], line["model"], line["team"]) == ("openai", "gpt-4o-mini", "sre")
        assert (line["input_tokens"], line["output_tokens"]) == (7, 28)
        assert (line["cached_tokens"], line["reasoning_tokens"]) == (2, 20)
        assert line["actual_cost_usd"] == pytest.approx(expected)
        assert line["priced"] is True
        assert [e["event"] for e in lines(settings.audit_log_path)] == ["llm_success"]
        assert fresh_emulator.request_count("openai") == 1

    def test_glm_4_5_usage_and_cost(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """glm-4.5 has no cached rate, so cached tokens are billed at the input rate."""
        fresh_emulator.configure("glm", thoughts_tokens=10, cached_tokens=3)
        settings = settings_for(fresh_emulator, tmp_path, "glm", GLM_MODEL="glm-4.5")
        with Client(settings) as client:
            reply = client.generate(PROMPT, purpose="ops")
        assert (reply.provider, reply.model) == ("glm", "glm-4.5")
        assert reply.text == "Emulated glm reply to 7 prompt tokens."
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, 18)
        assert (reply.usage.cached_tokens, reply.usage.reasoning_tokens) == (3, 10)
        # 7 × $0.60 (3 of them cached, same rate) + 18 × $2.20, per 1M tokens
        expected = (7 * 0.60 + 18 * 2.20) / 1e6
        assert expected == pytest.approx(43.8e-6)
        assert reply.cost_usd == pytest.approx(expected)
        line = lines(settings.cost_ledger_path)[0]
        assert line["actual_cost_usd"] == pytest.approx(expected)
        assert (line["cached_tokens"], line["reasoning_tokens"]) == (3, 10)

    def test_glm_4_flash_is_free_but_priced(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """glm-4-flash is in the price table at $0: cost 0, priced true."""
        settings = settings_for(fresh_emulator, tmp_path, "glm", GLM_MODEL="glm-4-flash")
        with Client(settings) as client:
            reply = client.generate(PROMPT, purpose="ops")
        assert reply.model == "glm-4-flash"
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, 8)
        line = lines(settings.cost_ledger_path)[0]
        assert line["actual_cost_usd"] == 0.0
        assert line["priced"] is True

    @pytest.mark.parametrize(
        ("provider", "model", "in_rate", "out_rate"),
        [("openai", "gpt-4o-mini", 0.15, 0.60), ("glm", "glm-4.5", 0.60, 2.20)],
    )
    def test_missing_usage_is_estimated_and_flagged(
        self,
        fresh_emulator: Emulator,
        tmp_path: Path,
        provider: str,
        model: str,
        in_rate: float,
        out_rate: float,
    ) -> None:
        """Without a usage block the ledger says approx_tokens and prices the estimate."""
        fresh_emulator.inject(provider, "omit_usage", times=1)
        settings = settings_for(fresh_emulator, tmp_path, provider, GLM_MODEL="glm-4.5")
        with Client(settings) as client:
            reply = client.generate("hello there", purpose="ops")
        assert reply.approx_tokens
        line = lines(settings.cost_ledger_path)[0]
        assert line["approx_tokens"] is True
        assert line["model"] == model
        assert line["input_tokens"] == 3  # ceil(11 chars / 4)
        assert line["output_tokens"] == math.ceil(len(reply.text) / 4)
        expected = (3 * in_rate + math.ceil(len(reply.text) / 4) * out_rate) / 1e6
        assert line["actual_cost_usd"] == pytest.approx(expected)
        assert expected > 0

    @pytest.mark.parametrize("provider", ["openai", "glm"])
    def test_options_reach_the_provider(
        self, fresh_emulator: Emulator, tmp_path: Path, provider: str
    ) -> None:
        """System prompt, max tokens and JSON mode go out and come back as the emulator says."""
        settings = settings_for(fresh_emulator, tmp_path, provider)
        with Client(settings) as client:
            short = client.generate(PROMPT, system="Be terse.", max_tokens=3, purpose="ops")
            data = client.generate("Answer in JSON: status?", json_mode=True, purpose="ops")
        assert short.finish_reason == "length"
        assert short.usage.input_tokens == 7 + 3
        assert short.usage.output_tokens == 3
        assert json.loads(data.text)["emulated"] is True

    def test_openai_json_mode_needs_json_in_the_prompt(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """OpenAI refuses JSON mode when no message mentions JSON; we pass that on as 400."""
        settings = settings_for(fresh_emulator, tmp_path, "openai")
        with Client(settings) as client, pytest.raises(BadRequestError) as caught:
            client.generate("status?", json_mode=True, purpose="ops")
        assert "must contain the word 'json'" in caught.value.message


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
    """Injected faults become typed errors and audit lines."""

    @pytest.mark.parametrize("provider", ["openai", "glm"])
    @pytest.mark.parametrize(("kind", "error", "error_type"), FAULTS)
    def test_fault_becomes_a_typed_error_and_an_audit_line(
        self,
        fresh_emulator: Emulator,
        tmp_path: Path,
        provider: str,
        kind: str,
        error: type[ProviderError],
        error_type: str,
    ) -> None:
        """Each fault surfaces as its typed error, audited, with no ledger line and no key."""
        fresh_emulator.inject(provider, kind, times=1, retry_after_s=1.5)
        settings = settings_for(fresh_emulator, tmp_path, provider)
        with Client(settings) as client, pytest.raises(error) as caught:
            client.generate("hello", purpose="ops")
        assert type(caught.value) is error
        audit = lines(settings.audit_log_path)
        assert audit[-1]["event"] == "llm_error"
        assert audit[-1]["provider"] == provider
        assert audit[-1]["error_type"] == error_type
        assert audit[-1]["request_id"] == caught.value.request_id
        assert lines(settings.cost_ledger_path) == []
        key = fresh_emulator.key_for(provider)
        assert key not in settings.audit_log_path.read_text()
        assert mask(key) not in str(caught.value)  # not even OpenAI's masked echo

    @pytest.mark.parametrize(
        ("provider", "code", "hint"),
        [("openai", "rate_limit_exceeded", 1.5), ("glm", "1302", None)],
    )
    def test_rate_limit_hint(
        self,
        fresh_emulator: Emulator,
        tmp_path: Path,
        provider: str,
        code: str,
        hint: float | None,
    ) -> None:
        """OpenAI's retry-after-ms reaches retry_after_s; GLM's 1302 has no hint at all."""
        fresh_emulator.inject(provider, "rate_limit", times=1, retry_after_s=1.5)
        settings = settings_for(fresh_emulator, tmp_path, provider)
        with Client(settings) as client, pytest.raises(RateLimitError) as caught:
            client.generate("hello", purpose="ops")
        assert caught.value.provider_code == code
        assert caught.value.retryable
        line = lines(settings.audit_log_path)[-1]
        assert line["provider_code"] == code
        if hint is None:
            assert caught.value.retry_after_s is None
            assert line["retry_after_s"] is None
        else:
            assert caught.value.retry_after_s == pytest.approx(hint)
            assert line["retry_after_s"] == pytest.approx(hint)

    @pytest.mark.parametrize(
        ("provider", "code"), [("openai", "insufficient_quota"), ("glm", "1113")]
    )
    def test_out_of_credit_429_is_not_retried(
        self, fresh_emulator: Emulator, tmp_path: Path, provider: str, code: str
    ) -> None:
        """A 429 that means "no balance" reaches the provider once, even with retries on."""
        fresh_emulator.inject(provider, "quota_daily")
        settings = settings_for(
            fresh_emulator, tmp_path, provider, LLM_RETRY_MAX_ATTEMPTS="3", LLM_RETRY_BASE_S="0.01"
        )
        with Client(settings) as client, pytest.raises(QuotaExhaustedError) as caught:
            client.generate("hello", purpose="ops")
        assert caught.value.status == 429
        assert caught.value.provider_code == code
        assert fresh_emulator.request_count(provider) == 1

    def test_glm_concurrency_429_is_retried(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """GLM's 1302 is retried with backoff and the call then succeeds."""
        fresh_emulator.inject("glm", "rate_limit", times=1)
        settings = settings_for(
            fresh_emulator, tmp_path, "glm", LLM_RETRY_MAX_ATTEMPTS="3", LLM_RETRY_BASE_S="0.01"
        )
        with Client(settings) as client:
            reply = client.generate("hello", purpose="ops")
        assert reply.finish_reason == "stop"
        assert fresh_emulator.request_count("glm") == 2
        events = [e["event"] for e in lines(settings.audit_log_path)]
        assert events == ["llm_error", "llm_retry", "llm_success"]

    @pytest.mark.parametrize("provider", ["openai", "glm"])
    def test_timeout_is_a_timeout_error(
        self, fresh_emulator: Emulator, tmp_path: Path, provider: str
    ) -> None:
        """A provider that never answers raises ProviderTimeoutError after LLM_TIMEOUT_S."""
        fresh_emulator.inject(provider, "timeout", times=1)
        settings = settings_for(fresh_emulator, tmp_path, provider, LLM_TIMEOUT_S="0.3")
        with Client(settings) as client, pytest.raises(ProviderTimeoutError):
            client.generate("hello", purpose="ops")

    @pytest.mark.parametrize("provider", ["openai", "glm"])
    def test_wrong_key_is_an_authentication_error(
        self, fresh_emulator: Emulator, tmp_path: Path, provider: str
    ) -> None:
        """A wrong configured key is refused by the provider's own auth check."""
        wrong = "sk-wrong-0123456789" if provider == "openai" else "wrongid.wrongsecret"
        settings = settings_for(
            fresh_emulator, tmp_path, provider, **{f"{VARIABLE[provider]}_API_KEY": wrong}
        )
        with Client(settings) as client, pytest.raises(AuthenticationError) as caught:
            client.generate("hello", purpose="ops")
        assert caught.value.status == 401
        assert wrong not in settings.audit_log_path.read_text()
        assert "6789" not in str(caught.value)
