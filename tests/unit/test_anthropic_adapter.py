"""The Anthropic adapter: request building and reply/error parsing, on canned bytes."""

from __future__ import annotations

import json

import pytest

from nexus_llm.config import ProviderSettings, Secret
from nexus_llm.errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from nexus_llm.observe.pricing import PriceTable
from nexus_llm.providers import adapter_for
from nexus_llm.providers.anthropic import (
    API_VERSION,
    DEFAULT_MAX_TOKENS,
    JSON_INSTRUCTION,
    AnthropicAdapter,
)
from nexus_llm.types import ChatRequest, HttpReply, Message, ProviderReply, Usage

FAKE_KEY = "sk-ant-api03-FAKE-key-do-not-log-0123456789"
BASE = "https://api.anthropic.com"
MODEL = "claude-haiku-4-5"

# The reference §4 body.
REFERENCE_BODY: dict[str, object] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": '{"severity":"high"}'}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 31,
        "output_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
    },
}


def _settings(base_url: str = BASE, model: str = MODEL) -> ProviderSettings:
    return ProviderSettings(
        name="anthropic", api_key=Secret(FAKE_KEY), base_url=base_url, model=model, timeout_s=5.0
    )


def _body(request: ChatRequest) -> dict[str, object]:
    built = AnthropicAdapter().build_request(request, _settings())
    body: dict[str, object] = json.loads(built.body)
    return body


def _user(text: str) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),))


def _ok(data: object, *, model: str = MODEL) -> ProviderReply:
    reply = HttpReply(200, {"content-type": "application/json"}, json.dumps(data).encode())
    return AnthropicAdapter().parse_reply(reply, model=model)


def _with_usage(usage: object) -> dict[str, object]:
    return {**REFERENCE_BODY, "usage": usage}


def _envelope(
    error_type: str, message: str = "something happened", **extra: object
) -> dict[str, object]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message, **extra},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


def _fail(
    status: int, body: object | bytes, headers: dict[str, str] | None = None
) -> ProviderError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ProviderError) as caught:
        AnthropicAdapter().parse_reply(HttpReply(status, headers or {}, raw), model=MODEL)
    return caught.value


class TestBuildRequest:
    """ChatRequest → the POST /v1/messages HTTP request."""

    def test_url_method_and_headers(self) -> None:
        """POST {base}/v1/messages with x-api-key and the pinned anthropic-version 2023-06-01."""
        built = AnthropicAdapter().build_request(_user("hi"), _settings())
        assert built.method == "POST"
        assert built.url == f"{BASE}/v1/messages"
        assert built.headers == {
            "x-api-key": FAKE_KEY,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        }
        assert API_VERSION == "2023-06-01"
        assert FAKE_KEY not in built.url
        assert FAKE_KEY.encode() not in built.body

    def test_trailing_slash_in_base_url(self) -> None:
        """A base URL ending in a slash does not produce a double slash."""
        built = AnthropicAdapter().build_request(_user("hi"), _settings("http://127.0.0.1:9/"))
        assert built.url == "http://127.0.0.1:9/v1/messages"

    def test_minimal_body_has_the_required_fields_only(self) -> None:
        """Without options the body is model, the default max_tokens and the messages."""
        assert _body(_user("Summarise this.")) == {
            "model": MODEL,
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": "Summarise this."}],
        }
        assert DEFAULT_MAX_TOKENS == 1024

    def test_request_model_overrides_settings_model(self) -> None:
        """A model on the request wins over the provider's configured model."""
        request = ChatRequest(messages=(Message("user", "hi"),), model="claude-sonnet-4-5")
        assert _body(request)["model"] == "claude-sonnet-4-5"

    def test_roles_pass_through_in_order(self) -> None:
        """User and assistant turns keep their roles and order."""
        request = ChatRequest(
            messages=(
                Message("user", "one"),
                Message("assistant", "two"),
                Message("user", "three"),
            )
        )
        assert _body(request)["messages"] == [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ]

    def test_system_temperature_and_max_tokens(self) -> None:
        """System is top-level, never a message; temperature and max_tokens are sent as given."""
        request = ChatRequest(
            messages=(Message("user", "hi"),),
            system="You are terse.",
            temperature=0.0,
            max_tokens=64,
        )
        body = _body(request)
        assert body["system"] == "You are terse."
        assert body["temperature"] == 0.0
        assert body["max_tokens"] == 64
        assert all(m["role"] != "system" for m in body["messages"])  # type: ignore[attr-defined]

    def test_no_system_or_temperature_when_unset(self) -> None:
        """Neither system nor temperature appears unless set."""
        body = _body(_user("hi"))
        assert "system" not in body
        assert "temperature" not in body

    def test_json_mode_adds_an_instruction_to_the_system_prompt(self) -> None:
        """The API has no JSON mode, so json_mode appends an instruction after the system text."""
        request = ChatRequest(messages=(Message("user", "hi"),), system="Be terse.", json_mode=True)
        assert _body(request)["system"] == f"Be terse.\n\n{JSON_INSTRUCTION}"
        alone = ChatRequest(messages=(Message("user", "hi"),), json_mode=True)
        assert _body(alone)["system"] == JSON_INSTRUCTION
        assert "response_format" not in _body(alone)

    def test_non_ascii_text_survives(self) -> None:
        """Non-ASCII prompt text is sent as UTF-8 and decodes back unchanged."""
        body = _body(_user("日志摘要 — résumé"))
        assert body["messages"] == [{"role": "user", "content": "日志摘要 — résumé"}]

    def test_adapter_registry(self) -> None:
        """The registry returns an Anthropic adapter for "anthropic"."""
        adapter = adapter_for("anthropic")
        assert isinstance(adapter, AnthropicAdapter)
        assert adapter.name == "anthropic"


class TestParseSuccess:
    """A 200 body → ProviderReply."""

    def test_reference_body(self) -> None:
        """The reference §4 body parses to its text, stop reason, model, id and usage."""
        reply = _ok(REFERENCE_BODY)
        assert reply.text == '{"severity":"high"}'
        assert reply.finish_reason == "end_turn"
        assert reply.model == "claude-sonnet-4-5-20250929"
        assert reply.response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
        assert reply.usage == Usage(input_tokens=31, output_tokens=12)

    def test_every_usage_field(self) -> None:
        """input = uncached + cache reads + cache writes; cached = reads; cache_write = writes."""
        reply = _ok(
            _with_usage(
                {
                    "input_tokens": 100,
                    "cache_creation_input_tokens": 2000,
                    "cache_read_input_tokens": 3000,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": 1500,
                        "ephemeral_1h_input_tokens": 500,
                    },
                    "output_tokens": 450,
                    "output_tokens_details": {"thinking_tokens": 300},
                    "service_tier": "standard",
                    "server_tool_use": {"web_search_requests": 0},
                }
            )
        )
        assert reply.usage == Usage(
            input_tokens=5100,
            output_tokens=450,
            cached_tokens=3000,
            reasoning_tokens=300,
            cache_write_tokens=2000,
            cache_write_1h_tokens=500,
        )
        assert reply.usage.total_tokens == 5550

    @pytest.mark.parametrize(
        ("usage", "expected"),
        [
            ({"input_tokens": 9, "output_tokens": 3}, Usage(input_tokens=9, output_tokens=3)),
            (
                {
                    "input_tokens": 9,
                    "output_tokens": 3,
                    "cache_creation_input_tokens": None,
                    "cache_read_input_tokens": None,
                    "cache_creation": None,
                },
                Usage(input_tokens=9, output_tokens=3),
            ),
            ({"output_tokens": 3}, Usage(output_tokens=3)),
            ({}, Usage()),
            ({"input_tokens": "12", "output_tokens": -4}, Usage()),
        ],
    )
    def test_absent_or_null_usage_fields_are_zero(
        self, usage: dict[str, object], expected: Usage
    ) -> None:
        """Absent, null or unusable counts read as 0 (cache fields are null without caching)."""
        assert _ok(_with_usage(usage)).usage == expected

    def test_cache_creation_split_stands_in_for_a_missing_total(self) -> None:
        """Without cache_creation_input_tokens, the TTL split is summed into cache writes."""
        usage = {
            "input_tokens": 10,
            "output_tokens": 1,
            "cache_creation": {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60},
        }
        reply = _ok(_with_usage(usage))
        assert reply.usage == Usage(
            input_tokens=110, output_tokens=1, cache_write_tokens=100, cache_write_1h_tokens=60
        )

    def test_thinking_tokens_never_exceed_output(self) -> None:
        """Thinking tokens are part of output_tokens, so a larger figure is clamped to it."""
        usage = {
            "input_tokens": 1,
            "output_tokens": 5,
            "output_tokens_details": {"thinking_tokens": 9},
        }
        reply = _ok(_with_usage(usage))
        assert reply.usage is not None
        assert reply.usage.reasoning_tokens == 5

    @pytest.mark.parametrize("usage", [None, "n/a", [1, 2]])
    def test_absent_usage_gives_none(self, usage: object) -> None:
        """Without a usage object the usage is None (so the pipeline can estimate)."""
        body = dict(REFERENCE_BODY)
        if usage is None:
            del body["usage"]
        else:
            body["usage"] = usage
        assert _ok(body).usage is None

    def test_thinking_block_is_not_text_but_its_tokens_are_output(self) -> None:
        """A thinking block stays out of the text; its tokens are already in output_tokens."""
        reply = _ok(
            {
                **REFERENCE_BODY,
                "content": [
                    {"type": "thinking", "thinking": "Let me see...", "signature": "EqQB"},
                    {"type": "redacted_thinking", "data": "EmwKAhgB"},
                    {"type": "text", "text": "Hel"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                    {"type": "text", "text": "lo"},
                ],
                "usage": {
                    "input_tokens": 20,
                    "output_tokens": 250,
                    "output_tokens_details": {"thinking_tokens": 240},
                },
            }
        )
        assert reply.text == "Hello"
        assert reply.usage == Usage(input_tokens=20, output_tokens=250, reasoning_tokens=240)

    def test_max_tokens_with_no_text(self) -> None:
        """max_tokens spent on thinking leaves no text block: empty text, not an error."""
        reply = _ok(
            {
                **REFERENCE_BODY,
                "content": [{"type": "thinking", "thinking": "...", "signature": "x"}],
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 5, "output_tokens": 64},
            }
        )
        assert reply.text == ""
        assert reply.finish_reason == "max_tokens"

    @pytest.mark.parametrize("content", [None, "text?", [], [None, 3, {"type": "text"}]])
    def test_absent_or_odd_content_gives_empty_text(self, content: object) -> None:
        """Missing, non-list or malformed content blocks give empty text."""
        body = dict(REFERENCE_BODY)
        if content is None:
            del body["content"]
        else:
            body["content"] = content
        assert _ok(body).text == ""

    @pytest.mark.parametrize(
        "reason",
        [
            "end_turn",
            "max_tokens",
            "stop_sequence",
            "tool_use",
            "pause_turn",
            "refusal",
            "model_context_window_exceeded",
            "something_new_2027",
        ],
    )
    def test_stop_reasons_pass_through(self, reason: str) -> None:
        """Every stop_reason, known or new, passes through unchanged."""
        assert _ok({**REFERENCE_BODY, "stop_reason": reason}).finish_reason == reason

    def test_null_stop_reason_is_unknown(self) -> None:
        """A null stop_reason becomes "unknown"."""
        assert _ok({**REFERENCE_BODY, "stop_reason": None}).finish_reason == "unknown"

    def test_model_and_id_fall_back(self) -> None:
        """Without model the reply names the model asked for; without id, response_id is None."""
        body = {k: v for k, v in REFERENCE_BODY.items() if k not in ("model", "id")}
        reply = _ok(body, model="claude-sonnet-4-6")
        assert reply.model == "claude-sonnet-4-6"
        assert reply.response_id is None

    @pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"msg"', b"\xff\xfe"])
    def test_non_object_200_is_malformed(self, body: bytes) -> None:
        """A 200 whose body is not a JSON object raises MalformedResponseError (retryable)."""
        with pytest.raises(MalformedResponseError) as caught:
            AnthropicAdapter().parse_reply(HttpReply(200, {}, body), model=MODEL)
        assert caught.value.retryable is True
        assert caught.value.provider == "anthropic"

    def test_error_envelope_with_200_is_an_error(self) -> None:
        """A 200 carrying the error envelope is classified by its error type."""
        error = _fail(200, _envelope("overloaded_error", "Overloaded"))
        assert type(error) is OverloadedError


class TestCost:
    """Usage from a parsed reply priced by the shipped table, checked by hand."""

    def test_haiku_with_cache_read_and_write(self) -> None:
        """Each input part is billed at its own rate: uncached 1.00, read 0.10, write 1.25."""
        reply = _ok(
            _with_usage(
                {
                    "input_tokens": 1000,
                    "cache_read_input_tokens": 20_000,
                    "cache_creation_input_tokens": 4000,
                    "output_tokens": 500,
                }
            )
        )
        assert reply.usage is not None
        price = PriceTable.load().price(MODEL, reply.usage)
        expected = (1000 * 1.00 + 20_000 * 0.10 + 4000 * 1.25 + 500 * 5.00) / 1e6
        assert price.priced
        assert price.cost_usd == pytest.approx(expected)

    @pytest.mark.parametrize(
        ("uncached", "read", "write", "above"),
        [
            (150_000, 0, 0, False),
            (150_000, 60_000, 0, True),
            (100_000, 50_000, 50_000, False),
            (100_000, 50_000, 50_001, True),
        ],
    )
    def test_sonnet_4_tier_is_chosen_by_total_input(
        self, uncached: int, read: int, write: int, above: bool
    ) -> None:
        """The >200k tier counts cache reads and writes too, not only usage.input_tokens."""
        reply = _ok(
            _with_usage(
                {
                    "input_tokens": uncached,
                    "cache_read_input_tokens": read,
                    "cache_creation_input_tokens": write,
                    "output_tokens": 1000,
                }
            )
        )
        assert reply.usage is not None
        cost = PriceTable.load().price("claude-sonnet-4-20250514", reply.usage).cost_usd
        in_rate, out_rate = (6.00, 22.50) if above else (3.00, 15.00)
        expected = (uncached * in_rate + read * 0.30 + write * 3.75 + 1000 * out_rate) / 1e6
        assert cost == pytest.approx(expected)


ERROR_TYPES: list[tuple[int, str, type[ProviderError], bool]] = [
    (400, "invalid_request_error", BadRequestError, False),
    (401, "authentication_error", AuthenticationError, False),
    (402, "billing_error", QuotaExhaustedError, False),
    (403, "permission_error", PermissionDeniedError, False),
    (404, "not_found_error", NotFoundError, False),
    (409, "conflict_error", ServerError, True),
    (413, "request_too_large", BadRequestError, False),
    (429, "rate_limit_error", RateLimitError, True),
    (500, "api_error", ServerError, True),
    (504, "timeout_error", ServerError, True),
    (529, "overloaded_error", OverloadedError, True),
]


class TestErrors:
    """Non-200 replies → typed ProviderErrors."""

    @pytest.mark.parametrize(("status", "error_type", "cls", "retryable"), ERROR_TYPES)
    def test_each_error_type(
        self, status: int, error_type: str, cls: type[ProviderError], retryable: bool
    ) -> None:
        """Every documented error.type maps to its class, keeping status, type and message."""
        error = _fail(status, _envelope(error_type, "the provider's words"))
        assert type(error) is cls
        assert error.retryable is retryable
        assert error.status == status
        assert error.provider == "anthropic"
        assert error.provider_code == error_type
        assert error.message == "the provider's words"

    def test_error_type_wins_over_status(self) -> None:
        """The error type decides, even when a proxy changed the status."""
        assert type(_fail(500, _envelope("overloaded_error"))) is OverloadedError
        assert type(_fail(400, _envelope("authentication_error"))) is AuthenticationError

    def test_unknown_error_type_falls_back_to_status(self) -> None:
        """An error type this version does not know is classified by HTTP status."""
        error = _fail(503, _envelope("brand_new_error"))
        assert type(error) is OverloadedError
        assert error.provider_code == "brand_new_error"

    @pytest.mark.parametrize(
        ("headers", "seconds"),
        [
            ({"retry-after": "11"}, 11.0),
            ({"Retry-After": "2.5"}, 2.5),
            ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
            ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
            ({}, None),
        ],
    )
    def test_429_retry_after(self, headers: dict[str, str], seconds: float | None) -> None:
        """A 429 takes its hint from retry-after-ms, else retry-after seconds; none is None."""
        error = _fail(429, _envelope("rate_limit_error", "would exceed the rate limit"), headers)
        assert type(error) is RateLimitError
        assert error.retry_after_s == seconds
        assert error.retryable is True

    def test_spend_cap_is_quota_exhausted(self) -> None:
        """A 429 with error_code enforced_spend_limit_reached is QuotaExhaustedError."""
        body = _envelope(
            "rate_limit_error",
            "You have reached your API usage limits.",
            details={"error_code": "enforced_spend_limit_reached"},
        )
        error = _fail(429, body)
        assert type(error) is QuotaExhaustedError
        assert error.retryable is False
        assert error.retry_after_s is None
        assert error.provider_code == "enforced_spend_limit_reached"

    def test_other_error_codes_are_plain_rate_limits(self) -> None:
        """An unknown details.error_code on a 429 leaves it a plain RateLimitError."""
        body = _envelope("rate_limit_error", details={"error_code": "something_else"})
        assert type(_fail(429, body, {"retry-after": "3"})) is RateLimitError

    def test_529_honours_retry_after(self) -> None:
        """An overloaded 529 keeps a retry-after hint when the API sends one."""
        error = _fail(529, _envelope("overloaded_error", "Overloaded"), {"retry-after": "4"})
        assert type(error) is OverloadedError
        assert error.retry_after_s == 4.0
        assert "Overloaded" in str(error)

    def test_retry_after_is_ignored_on_errors_not_worth_retrying(self) -> None:
        """A hint on a non-retryable error (401) is dropped: nobody should wait for it."""
        error = _fail(401, _envelope("authentication_error"), {"retry-after": "5"})
        assert error.retry_after_s is None

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (400, BadRequestError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (413, BadRequestError),
            (429, RateLimitError),
            (500, ServerError),
            (502, ServerError),
            (504, ServerError),
            (529, OverloadedError),
        ],
    )
    def test_non_json_error_body_classified_by_status(
        self, status: int, cls: type[ProviderError]
    ) -> None:
        """A non-JSON error body (Cloudflare's 413 page, a 502) is classified by status."""
        error = _fail(status, b"<html><body>413 Request Entity Too Large</body></html>")
        assert type(error) is cls
        assert error.status == status
        assert error.provider_code is None

    def test_bare_429_keeps_its_retry_after(self) -> None:
        """A 429 without the envelope still carries the retry-after header's hint."""
        assert _fail(429, b"Too Many Requests", {"retry-after": "7"}).retry_after_s == 7.0

    @pytest.mark.parametrize("body", [{"type": "error"}, {"error": "boom"}, {"oops": True}])
    def test_envelope_without_error_object_classified_by_status(self, body: object) -> None:
        """JSON without an error object is classified by HTTP status alone."""
        assert type(_fail(529, body)) is OverloadedError

    def test_missing_message(self) -> None:
        """An error object without a message still makes a readable error."""
        error = _fail(500, {"type": "error", "error": {"type": "api_error"}})
        assert type(error) is ServerError
        assert error.message == "no message"

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (401, _envelope("authentication_error", "invalid x-api-key")),
            (403, _envelope("permission_error", "no access")),
            (429, _envelope("rate_limit_error", "slow down")),
            (529, _envelope("overloaded_error", "Overloaded")),
            (502, b"bad gateway"),
        ],
    )
    def test_no_error_mentions_the_key(self, status: int, body: object) -> None:
        """No error message or repr contains the API key used for the request."""
        built = AnthropicAdapter().build_request(_user("hi"), _settings())
        assert built.headers["x-api-key"] == FAKE_KEY
        error = _fail(status, body, {"retry-after": "1"})
        for shown in (str(error), repr(error), error.message, repr(error.args)):
            assert FAKE_KEY not in shown
