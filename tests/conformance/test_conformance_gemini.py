"""The official `google-genai` SDK against the emulated Gemini API, unary and streaming.

The client below names ``v1beta``; the SDK's default ``/v1`` is served too (see
``test_default_api_version_is_served``).
"""

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

genai = require_sdk("google.genai", distribution="google-genai")

MODEL = "gemini-2.5-flash"


def sdk_for(emulator: Emulator, *, api_version: str | None = "v1beta") -> Any:
    options = genai.types.HttpOptions(
        base_url=emulator.base_url_for("gemini"),
        api_version=api_version,
        timeout=int(TIMEOUT_S * 1000),
        retry_options=genai.types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=emulator.key_for("gemini"), vertexai=False, http_options=options)


def call(emulator: Emulator, *, api_version: str | None = "v1beta") -> Any:
    with sdk_for(emulator, api_version=api_version) as sdk:
        return sdk.models.generate_content(model=MODEL, contents=PROMPT)


def stream(emulator: Emulator, *, api_version: str | None = "v1beta") -> list[Any]:
    """Every chunk of one ``generate_content_stream`` call, read to the end."""
    with sdk_for(emulator, api_version=api_version) as sdk:
        return list(sdk.models.generate_content_stream(model=MODEL, contents=PROMPT))


def detail(error: Any, kind: str) -> dict[str, Any]:
    """The first ``google.rpc`` detail of type `kind` in the error body."""
    details = error.details["error"]["details"]
    return next(d for d in details if d["@type"] == f"type.googleapis.com/google.rpc.{kind}")


class TestUnary:
    def test_text_and_usage_match_our_adapter(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """The SDK reads the emulator's text and usage, and our adapter reads the same numbers."""
        configure_usage(fresh_emulator, "gemini")
        reply = call(fresh_emulator)
        ours = our_usage(fresh_emulator, tmp_path, "gemini")
        assert reply.text == expected_text("gemini")
        assert reply.candidates[0].finish_reason == genai.types.FinishReason.STOP
        usage = reply.usage_metadata
        assert usage.prompt_token_count == PROMPT_TOKENS == ours.input_tokens
        assert usage.cached_content_token_count == CACHED_TOKENS == ours.cached_tokens
        assert usage.thoughts_token_count == THOUGHTS_TOKENS == ours.reasoning_tokens
        assert usage.candidates_token_count == REPLY_TOKENS
        # Gemini bills thoughts as output; our output_tokens is candidates plus thoughts.
        assert usage.candidates_token_count + usage.thoughts_token_count == ours.output_tokens
        assert usage.total_token_count == PROMPT_TOKENS + REPLY_TOKENS + THOUGHTS_TOKENS

    def test_omitted_usage_reads_as_none(self, fresh_emulator: Emulator) -> None:
        """With usageMetadata left out, the SDK still parses the reply and reports no usage."""
        fresh_emulator.inject("gemini", "omit_usage", times=1)
        reply = call(fresh_emulator)
        assert reply.text == expected_text("gemini")
        assert reply.usage_metadata is None

    def test_default_api_version_is_served(self, fresh_emulator: Emulator) -> None:
        """The SDK with its default API version gets a Gemini reply."""
        reply = call(fresh_emulator, api_version=None)
        assert reply.text == expected_text("gemini")


class TestErrors:
    @pytest.mark.parametrize(
        ("kind", "error", "code", "status"),
        [
            ("bad_key", "ClientError", 400, "INVALID_ARGUMENT"),
            ("rate_limit", "ClientError", 429, "RESOURCE_EXHAUSTED"),
            ("quota_daily", "ClientError", 429, "RESOURCE_EXHAUSTED"),
            ("server_error", "ServerError", 500, "INTERNAL"),
            ("unavailable", "ServerError", 503, "UNAVAILABLE"),
        ],
    )
    def test_fault_raises_the_sdk_error(
        self, fresh_emulator: Emulator, kind: str, error: str, code: int, status: str
    ) -> None:
        """Each injected fault surfaces as the SDK's own typed error with code and status, once."""
        fresh_emulator.inject("gemini", kind, times=1)
        with pytest.raises(getattr(genai.errors, error)) as caught:
            call(fresh_emulator)
        assert type(caught.value) is getattr(genai.errors, error)
        assert (caught.value.code, caught.value.status) == (code, status)
        assert fresh_emulator.request_count("gemini") == 1

    def test_bad_key_says_api_key_invalid(self, fresh_emulator: Emulator) -> None:
        """A wrong key is a 400 whose ErrorInfo reason is API_KEY_INVALID."""
        fresh_emulator.inject("gemini", "bad_key", times=1)
        with pytest.raises(genai.errors.ClientError) as caught:
            call(fresh_emulator)
        assert detail(caught.value, "ErrorInfo")["reason"] == "API_KEY_INVALID"

    def test_rate_limit_carries_retry_info(self, fresh_emulator: Emulator) -> None:
        """A rate limit carries the injected hint as RetryInfo.retryDelay in the body."""
        fresh_emulator.inject("gemini", "rate_limit", times=1, retry_after_s=RETRY_AFTER_S)
        with pytest.raises(genai.errors.ClientError) as caught:
            call(fresh_emulator)
        assert detail(caught.value, "RetryInfo")["retryDelay"] == f"{RETRY_AFTER_S}s"


class TestStreaming:
    def test_chunks_join_to_the_unary_text_with_the_unary_usage(
        self, fresh_emulator: Emulator
    ) -> None:
        """The SDK reads several chunks whose text is the unary text; the last has its usage."""
        configure_usage(fresh_emulator, "gemini")
        chunks = stream(fresh_emulator)
        unary = call(fresh_emulator)
        assert len(chunks) > 1
        assert "".join(chunk.text for chunk in chunks) == unary.text == expected_text("gemini")
        assert chunks[-1].candidates[0].finish_reason == genai.types.FinishReason.STOP
        usage = chunks[-1].usage_metadata
        assert usage == unary.usage_metadata
        assert usage.prompt_token_count == PROMPT_TOKENS
        assert usage.candidates_token_count == REPLY_TOKENS
        assert usage.thoughts_token_count == THOUGHTS_TOKENS
        assert fresh_emulator.request_count("gemini") == 2

    def test_default_api_version_streams(self, fresh_emulator: Emulator) -> None:
        """The SDK with its default API version streams too."""
        chunks = stream(fresh_emulator, api_version=None)
        assert "".join(chunk.text for chunk in chunks) == expected_text("gemini")

    def test_error_before_the_stream_is_the_unary_error(self, fresh_emulator: Emulator) -> None:
        """A rate limit on a stream request raises the same ClientError as unary."""
        fresh_emulator.inject("gemini", "rate_limit", times=1)
        with pytest.raises(genai.errors.ClientError) as caught:
            stream(fresh_emulator)
        assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")

    def test_in_stream_error_raises_server_error(self, fresh_emulator: Emulator) -> None:
        """An error object inside the stream surfaces as the SDK's ServerError (503)."""
        fresh_emulator.inject("gemini", "stream_error", times=1)
        with pytest.raises(genai.errors.ServerError) as caught:
            stream(fresh_emulator)
        assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")

    def test_cut_stream_ends_quietly_without_finish_reason(self, fresh_emulator: Emulator) -> None:
        """The SDK raises nothing on a cut stream: only the missing finishReason (and the
        prompt-only usage) tell a client that the text is partial."""
        fresh_emulator.inject("gemini", "stream_cut", times=1)
        chunks = stream(fresh_emulator)
        text = "".join(chunk.text for chunk in chunks)
        assert text
        assert expected_text("gemini").startswith(text)
        assert text != expected_text("gemini")
        assert all(chunk.candidates[0].finish_reason is None for chunk in chunks)
        assert chunks[-1].usage_metadata.candidates_token_count is None
