"""The official `anthropic` SDK against the emulated Anthropic Messages API, unary and streaming.

This SDK sends the key as ``Authorization: Bearer``; the unary client below also sends
``x-api-key`` and the streaming one does not, so both ways are covered (see also
``test_plain_sdk_authenticates``).
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

anthropic = require_sdk("anthropic", distribution="anthropic")

MODEL = "claude-haiku-4-5"


def call(emulator: Emulator, *, key_header: bool = True) -> object:
    key = emulator.key_for("anthropic")
    sdk = anthropic.Anthropic(
        base_url=emulator.base_url_for("anthropic"),
        api_key=key,
        default_headers={"x-api-key": key} if key_header else None,
        max_retries=0,
        timeout=TIMEOUT_S,
    )
    with sdk:
        return sdk.messages.create(
            model=MODEL, max_tokens=256, messages=[{"role": "user", "content": PROMPT}]
        )


def stream(emulator: Emulator) -> tuple[str, Any]:
    """The joined text and the final message of one ``messages.stream`` call."""
    sdk = anthropic.Anthropic(
        base_url=emulator.base_url_for("anthropic"),
        api_key=emulator.key_for("anthropic"),
        max_retries=0,
        timeout=TIMEOUT_S,
    )
    with (
        sdk,
        sdk.messages.stream(
            model=MODEL, max_tokens=256, messages=[{"role": "user", "content": PROMPT}]
        ) as events,
    ):
        text = "".join(events.text_stream)
        return text, events.get_final_message()


class TestUnary:
    def test_text_and_usage_match_our_adapter(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """The SDK reads the emulator's text and usage, and our adapter reads the same numbers."""
        configure_usage(fresh_emulator, "anthropic")
        reply = call(fresh_emulator)
        ours = our_usage(fresh_emulator, tmp_path, "anthropic")
        assert isinstance(reply, anthropic.types.Message)
        texts = [block.text for block in reply.content if block.type == "text"]
        assert texts == [expected_text("anthropic")]
        assert reply.stop_reason == "end_turn"
        usage = reply.usage
        # Anthropic's input_tokens excludes cache reads and writes; ours is the whole prompt.
        assert usage.cache_read_input_tokens == CACHED_TOKENS == ours.cached_tokens
        assert usage.cache_creation_input_tokens == 0 == ours.cache_write_tokens
        whole_prompt = (
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        )
        assert whole_prompt == PROMPT_TOKENS == ours.input_tokens
        assert usage.output_tokens == REPLY_TOKENS + THOUGHTS_TOKENS == ours.output_tokens
        assert usage.output_tokens_details is not None
        thinking = usage.output_tokens_details.thinking_tokens
        assert thinking == THOUGHTS_TOKENS == ours.reasoning_tokens

    def test_plain_sdk_authenticates(self, fresh_emulator: Emulator) -> None:
        """The SDK configured only with api_key is accepted, however it sends the key."""
        reply = call(fresh_emulator, key_header=False)
        assert isinstance(reply, anthropic.types.Message)


class TestErrors:
    @pytest.mark.parametrize(
        ("kind", "error", "status"),
        [
            ("bad_key", "AuthenticationError", 401),
            ("rate_limit", "RateLimitError", 429),
            ("server_error", "InternalServerError", 500),
            ("unavailable", "OverloadedError", 529),
        ],
    )
    def test_fault_raises_the_sdk_error(
        self, fresh_emulator: Emulator, kind: str, error: str, status: int
    ) -> None:
        """Each injected fault surfaces as the SDK's own typed error with the same status, once."""
        fresh_emulator.inject("anthropic", kind, times=1)
        with pytest.raises(getattr(anthropic, error)) as caught:
            call(fresh_emulator)
        assert type(caught.value) is getattr(anthropic, error)
        assert caught.value.status_code == status
        assert fresh_emulator.request_count("anthropic") == 1

    def test_rate_limit_carries_retry_after(self, fresh_emulator: Emulator) -> None:
        """A rate limit carries the injected hint in Retry-After and the SDK says to retry."""
        fresh_emulator.inject("anthropic", "rate_limit", times=1, retry_after_s=RETRY_AFTER_S)
        with pytest.raises(anthropic.RateLimitError) as caught:
            call(fresh_emulator)
        headers = caught.value.response.headers
        assert headers["retry-after"] == str(RETRY_AFTER_S)
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert caught.value.body["error"]["type"] == "rate_limit_error"

    def test_spend_limit_is_a_rate_limit_without_hint(self, fresh_emulator: Emulator) -> None:
        """An exhausted usage limit is a 429 rate_limit_error with no Retry-After."""
        fresh_emulator.inject("anthropic", "quota_daily", times=1)
        with pytest.raises(anthropic.RateLimitError) as caught:
            call(fresh_emulator)
        assert caught.value.status_code == 429
        assert caught.value.body["error"]["type"] == "rate_limit_error"
        assert "retry-after" not in caught.value.response.headers


class TestStreaming:
    def test_deltas_join_to_the_unary_text_with_the_unary_usage(
        self, fresh_emulator: Emulator
    ) -> None:
        """The SDK's text stream is the unary text and its final message has the unary usage."""
        configure_usage(fresh_emulator, "anthropic")
        text, final = stream(fresh_emulator)
        unary = call(fresh_emulator)
        assert isinstance(unary, anthropic.types.Message)
        assert text == expected_text("anthropic")
        assert [block.type for block in final.content] == ["thinking", "text"]
        # The stream's blocks are the SDK's parsed subclasses; their fields are the unary ones.
        assert [b.to_dict() for b in final.content] == [b.to_dict() for b in unary.content]
        assert final.stop_reason == "end_turn"
        assert final.usage == unary.usage
        assert final.usage.output_tokens == REPLY_TOKENS + THOUGHTS_TOKENS
        assert final.usage.cache_read_input_tokens == CACHED_TOKENS

    def test_error_before_the_stream_is_the_unary_error(self, fresh_emulator: Emulator) -> None:
        """An overload on a stream request raises the same OverloadedError (529) as unary."""
        fresh_emulator.inject("anthropic", "unavailable", times=1)
        with pytest.raises(anthropic.OverloadedError):
            stream(fresh_emulator)

    def test_in_stream_error_event_raises_api_status_error(self, fresh_emulator: Emulator) -> None:
        """An ``error`` event raises the SDK's APIStatusError carrying overloaded_error."""
        fresh_emulator.inject("anthropic", "stream_error", times=1)
        with pytest.raises(anthropic.APIStatusError) as caught:
            stream(fresh_emulator)
        # The HTTP status was 200, so the SDK picks its status-neutral class.
        assert caught.value.body["error"]["type"] == "overloaded_error"
        assert caught.value.body["request_id"] == caught.value.response.headers["request-id"]

    def test_cut_stream_ends_quietly_without_stop_reason(self, fresh_emulator: Emulator) -> None:
        """The SDK raises nothing on a stream cut before message_stop: the final message has
        partial text, no stop_reason and message_start's provisional output_tokens."""
        fresh_emulator.inject("anthropic", "stream_cut", times=1)
        text, final = stream(fresh_emulator)
        assert text
        assert expected_text("anthropic").startswith(text)
        assert text != expected_text("anthropic")
        assert final.stop_reason is None
        assert final.usage.output_tokens == 1
