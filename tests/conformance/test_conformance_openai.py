"""The official `openai` SDK against the emulated OpenAI Chat Completions API (unary only).

Streaming is not emulated yet (the emulator answers 400 to ``stream: true``), so only unary
calls are checked here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_support import (
    CACHED_TOKENS,
    PROMPT,
    PROMPT_TOKENS,
    REPLY_TOKENS,
    RETRY_AFTER_S,
    THOUGHTS_TOKENS,
    TIMEOUT_S,
    configure_usage,
    expected_text,
    our_usage,
    require_sdk,
)

from nexus_llm.emulator import Emulator

openai = require_sdk("openai", distribution="openai")

MODEL = "gpt-4o-mini"


def call(emulator: Emulator) -> object:
    sdk = openai.OpenAI(
        base_url=emulator.base_url_for("openai"),
        api_key=emulator.key_for("openai"),
        max_retries=0,
        timeout=TIMEOUT_S,
    )
    with sdk:
        return sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}]
        )


class TestUnary:
    def test_text_and_usage_match_our_adapter(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """The SDK reads the emulator's text and usage, and our adapter reads the same numbers."""
        configure_usage(fresh_emulator, "openai")
        reply = call(fresh_emulator)
        ours = our_usage(fresh_emulator, tmp_path, "openai")
        assert isinstance(reply, openai.types.chat.ChatCompletion)
        assert reply.choices[0].message.content == expected_text("openai")
        assert reply.choices[0].finish_reason == "stop"
        usage = reply.usage
        assert usage is not None
        assert usage.prompt_tokens == PROMPT_TOKENS == ours.input_tokens
        assert usage.completion_tokens == REPLY_TOKENS + THOUGHTS_TOKENS == ours.output_tokens
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == CACHED_TOKENS == ours.cached_tokens
        assert usage.completion_tokens_details is not None
        reasoning = usage.completion_tokens_details.reasoning_tokens
        assert reasoning == THOUGHTS_TOKENS == ours.reasoning_tokens
        assert ours.cache_write_tokens == 0

    def test_omitted_usage_reads_as_none(self, fresh_emulator: Emulator) -> None:
        """With the usage block left out, the SDK still parses the reply and reports no usage."""
        fresh_emulator.inject("openai", "omit_usage", times=1)
        reply = call(fresh_emulator)
        assert isinstance(reply, openai.types.chat.ChatCompletion)
        assert reply.choices[0].message.content == expected_text("openai")
        assert reply.usage is None


class TestErrors:
    @pytest.mark.parametrize(
        ("kind", "error", "status"),
        [
            ("bad_key", "AuthenticationError", 401),
            ("rate_limit", "RateLimitError", 429),
            ("quota_daily", "RateLimitError", 429),
            ("server_error", "InternalServerError", 500),
            ("unavailable", "InternalServerError", 503),
        ],
    )
    def test_fault_raises_the_sdk_error(
        self, fresh_emulator: Emulator, kind: str, error: str, status: int
    ) -> None:
        """Each injected fault surfaces as the SDK's own typed error with the same status, once."""
        fresh_emulator.inject("openai", kind, times=1)
        with pytest.raises(getattr(openai, error)) as caught:
            call(fresh_emulator)
        assert type(caught.value) is getattr(openai, error)
        assert caught.value.status_code == status
        assert fresh_emulator.request_count("openai") == 1

    def test_rate_limit_carries_retry_after(self, fresh_emulator: Emulator) -> None:
        """A rate limit carries the injected hint in Retry-After and retry-after-ms."""
        fresh_emulator.inject("openai", "rate_limit", times=1, retry_after_s=RETRY_AFTER_S)
        with pytest.raises(openai.RateLimitError) as caught:
            call(fresh_emulator)
        headers = caught.value.response.headers
        assert headers["retry-after"] == str(RETRY_AFTER_S)
        assert headers["retry-after-ms"] == str(RETRY_AFTER_S * 1000)
        assert caught.value.code == "rate_limit_exceeded"

    def test_daily_quota_is_insufficient_quota(self, fresh_emulator: Emulator) -> None:
        """An exhausted quota is a 429 whose error code says so, with no retry hint."""
        fresh_emulator.inject("openai", "quota_daily", times=1)
        with pytest.raises(openai.RateLimitError) as caught:
            call(fresh_emulator)
        assert caught.value.code == "insufficient_quota"
        assert "retry-after" not in caught.value.response.headers
