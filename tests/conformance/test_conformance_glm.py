"""The official `zhipuai` SDK against the emulated GLM (BigModel) chat API, unary and streaming."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conformance_support import (
    CACHED_TOKENS,
    PROMPT,
    PROMPT_TOKENS,
    REPLY_TOKENS,
    THOUGHTS_TOKENS,
    TIMEOUT_S,
    configure_usage,
    expected_text,
    our_usage,
    require_sdk,
)

from nexus_llm.emulator import Emulator

zhipuai = require_sdk("zhipuai", distribution="zhipuai")

MODEL = "glm-4.5-flash"


def sdk_for(emulator: Emulator) -> Any:
    return zhipuai.ZhipuAI(
        base_url=emulator.base_url_for("glm"),
        api_key=emulator.key_for("glm"),
        max_retries=0,
        timeout=TIMEOUT_S,
    )


def call(emulator: Emulator) -> Any:
    return sdk_for(emulator).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}]
    )


def stream(emulator: Emulator) -> list[Any]:
    """Every chunk of one ``stream=True`` call, read to the end."""
    return list(
        sdk_for(emulator).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True
        )
    )


class TestUnary:
    def test_text_and_usage_match_our_adapter(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """The SDK reads the emulator's text and usage, and our adapter reads the same numbers."""
        configure_usage(fresh_emulator, "glm")
        reply = call(fresh_emulator)
        ours = our_usage(fresh_emulator, tmp_path, "glm")
        assert reply.choices[0].message.content == expected_text("glm")
        assert reply.choices[0].finish_reason == "stop"
        usage = reply.usage
        assert usage.prompt_tokens == PROMPT_TOKENS == ours.input_tokens
        assert usage.completion_tokens == REPLY_TOKENS + THOUGHTS_TOKENS == ours.output_tokens
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        # zhipuai keeps the detail blocks as plain dicts.
        assert usage.prompt_tokens_details["cached_tokens"] == CACHED_TOKENS == ours.cached_tokens
        reasoning = usage.completion_tokens_details["reasoning_tokens"]
        assert reasoning == THOUGHTS_TOKENS == ours.reasoning_tokens

    def test_omitted_usage_reads_as_none(self, fresh_emulator: Emulator) -> None:
        """With the usage block left out, the SDK still parses the reply and reports no usage."""
        fresh_emulator.inject("glm", "omit_usage", times=1)
        reply = call(fresh_emulator)
        assert reply.choices[0].message.content == expected_text("glm")
        assert reply.usage is None


class TestErrors:
    @pytest.mark.parametrize(
        ("kind", "error", "status", "business_code"),
        [
            ("bad_key", "APIAuthenticationError", 401, "1002"),
            ("rate_limit", "APIReachLimitError", 429, "1302"),
            # GLM's balance exhaustion and model overload both arrive as HTTP 429.
            ("quota_daily", "APIReachLimitError", 429, "1113"),
            ("unavailable", "APIReachLimitError", 429, "1305"),
            ("server_error", "APIInternalError", 500, "500"),
        ],
    )
    def test_fault_raises_the_sdk_error(
        self, fresh_emulator: Emulator, kind: str, error: str, status: int, business_code: str
    ) -> None:
        """Each injected fault surfaces as the SDK's typed error with status and business code."""
        fresh_emulator.inject("glm", kind, times=1)
        with pytest.raises(getattr(zhipuai, error)) as caught:
            call(fresh_emulator)
        assert type(caught.value) is getattr(zhipuai, error)
        assert caught.value.status_code == status
        assert caught.value.response.json()["error"]["code"] == business_code
        # GLM sends no retry hint header, not even on a rate limit.
        assert "retry-after" not in caught.value.response.headers
        assert fresh_emulator.request_count("glm") == 1


class TestStreaming:
    def test_chunks_join_to_the_unary_text_with_the_unary_usage(
        self, fresh_emulator: Emulator
    ) -> None:
        """The SDK reads several chunks whose text is the unary text; the last has its usage."""
        configure_usage(fresh_emulator, "glm")
        chunks = stream(fresh_emulator)
        unary = call(fresh_emulator)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
        assert len(chunks) > 2
        assert text == unary.choices[0].message.content == expected_text("glm")
        assert chunks[0].choices[0].delta.reasoning_content
        assert chunks[-1].choices[0].finish_reason == "stop"
        # The chunk types its detail blocks while the unary reply keeps dicts: compare as JSON.
        assert chunks[-1].usage.model_dump() == unary.usage.model_dump()
        assert chunks[-1].usage.completion_tokens == REPLY_TOKENS + THOUGHTS_TOKENS
        assert all(chunk.usage is None for chunk in chunks[:-1])

    def test_error_before_the_stream_is_the_unary_error(self, fresh_emulator: Emulator) -> None:
        """A rate limit on a stream request raises the same APIReachLimitError as unary."""
        fresh_emulator.inject("glm", "rate_limit", times=1)
        with pytest.raises(zhipuai.APIReachLimitError):
            stream(fresh_emulator)

    def test_in_stream_error_raises_api_response_error(self, fresh_emulator: Emulator) -> None:
        """An error chunk inside the stream raises the SDK's APIResponseError with its body."""
        fresh_emulator.inject("glm", "stream_error", times=1)
        with pytest.raises(zhipuai.APIResponseError) as caught:
            stream(fresh_emulator)
        assert caught.value.json_data["code"] == "500"

    def test_cut_stream_ends_quietly_without_finish_or_usage(
        self, fresh_emulator: Emulator
    ) -> None:
        """The SDK raises nothing on a stream cut before ``[DONE]``: only the missing
        finish_reason and usage tell a client that the text is partial."""
        fresh_emulator.inject("glm", "stream_cut", times=1)
        chunks = stream(fresh_emulator)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
        assert text
        assert expected_text("glm").startswith(text)
        assert text != expected_text("glm")
        assert all(chunk.choices[0].finish_reason is None for chunk in chunks)
        assert all(chunk.usage is None for chunk in chunks)
