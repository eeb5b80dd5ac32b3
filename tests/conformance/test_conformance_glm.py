"""The official `zhipuai` SDK against the emulated GLM (BigModel) chat API (unary only).

Streaming is not emulated yet (the emulator answers 400 to ``stream: true``), so only unary
calls are checked here.
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


def call(emulator: Emulator) -> Any:
    sdk = zhipuai.ZhipuAI(
        base_url=emulator.base_url_for("glm"),
        api_key=emulator.key_for("glm"),
        max_retries=0,
        timeout=TIMEOUT_S,
    )
    return sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}])


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
