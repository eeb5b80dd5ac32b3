"""The official `openai` SDK against the emulated OpenAI Chat Completions API, unary and
streaming."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def sdk_for(emulator: Emulator) -> Any:
    return openai.OpenAI(
        base_url=emulator.base_url_for("openai"),
        api_key=emulator.key_for("openai"),
        max_retries=0,
        timeout=TIMEOUT_S,
    )


def call(emulator: Emulator) -> object:
    with sdk_for(emulator) as sdk:
        return sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}]
        )


def stream(emulator: Emulator, *, include_usage: bool = True) -> list[Any]:
    """Every chunk of one ``stream=True`` call, read to the end."""
    with sdk_for(emulator) as sdk:
        return list(
            sdk.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": PROMPT}],
                stream=True,
                stream_options={"include_usage": include_usage},
            )
        )


def text_of(chunks: list[Any]) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


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


class TestStreaming:
    def test_chunks_join_to_the_unary_text_with_the_unary_usage(
        self, fresh_emulator: Emulator
    ) -> None:
        """The SDK reads several chunks whose text is the unary text; the usage chunk comes last."""
        configure_usage(fresh_emulator, "openai")
        chunks = stream(fresh_emulator)
        unary = call(fresh_emulator)
        assert isinstance(unary, openai.types.chat.ChatCompletion)
        assert len(chunks) > 2
        assert text_of(chunks) == unary.choices[0].message.content == expected_text("openai")
        assert chunks[-1].choices == []
        assert chunks[-1].usage == unary.usage
        assert chunks[-1].usage.completion_tokens == REPLY_TOKENS + THOUGHTS_TOKENS
        assert chunks[-2].choices[0].finish_reason == "stop"
        assert all(chunk.usage is None for chunk in chunks[:-1])

    def test_no_usage_unless_asked(self, fresh_emulator: Emulator) -> None:
        """Without include_usage the stream has the text and no usage chunk."""
        chunks = stream(fresh_emulator, include_usage=False)
        assert text_of(chunks) == expected_text("openai")
        assert all(chunk.usage is None and chunk.choices for chunk in chunks)

    def test_error_before_the_stream_is_the_unary_error(self, fresh_emulator: Emulator) -> None:
        """A rate limit on a stream request raises the same RateLimitError as unary."""
        fresh_emulator.inject("openai", "rate_limit", times=1)
        with pytest.raises(openai.RateLimitError):
            stream(fresh_emulator)

    def test_in_stream_error_raises_api_error(self, fresh_emulator: Emulator) -> None:
        """An error chunk inside the stream raises the SDK's APIError with the error body."""
        fresh_emulator.inject("openai", "stream_error", times=1)
        with pytest.raises(openai.APIError) as caught:
            stream(fresh_emulator)
        assert type(caught.value) is openai.APIError
        assert caught.value.type == "server_error"
        assert "server had an error" in caught.value.message

    def test_cut_stream_ends_quietly_without_finish_or_usage(
        self, fresh_emulator: Emulator
    ) -> None:
        """The SDK raises nothing on a stream cut before ``[DONE]``: only the missing
        finish_reason and usage tell a client that the text is partial."""
        fresh_emulator.inject("openai", "stream_cut", times=1)
        chunks = stream(fresh_emulator)
        text = text_of(chunks)
        assert text
        assert expected_text("openai").startswith(text)
        assert text != expected_text("openai")
        assert all(c.choices[0].finish_reason is None for c in chunks)
        assert all(c.usage is None for c in chunks)
