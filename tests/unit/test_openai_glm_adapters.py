"""The OpenAI and GLM chat completions adapters: request building and reply/error parsing."""

from __future__ import annotations

import json
from collections.abc import Mapping

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
from nexus_llm.providers import adapter_for, supported_providers
from nexus_llm.providers.base import ProviderAdapter
from nexus_llm.providers.glm import GLMAdapter
from nexus_llm.providers.openai import OpenAIAdapter, parse_duration, retry_hint
from nexus_llm.types import ChatRequest, HttpReply, Message, ProviderReply, Usage

OPENAI_KEY = "sk-proj-FAKEkeyDoNotLog0123456789abcd"
GLM_KEY = "0123456789abcdef0123456789abcdef.FAKEsecretDoNotLog"
OPENAI_BASE = "https://api.openai.com/v1"
BIGMODEL_BASE = "https://open.bigmodel.cn/api/paas/v4"
ZAI_BASE = "https://api.z.ai/api/paas/v4"

ADAPTERS: dict[str, tuple[ProviderAdapter, str, str, str]] = {
    "openai": (OpenAIAdapter(), OPENAI_KEY, OPENAI_BASE, "gpt-4o-mini"),
    "glm": (GLMAdapter(), GLM_KEY, BIGMODEL_BASE, "glm-4-flash"),
}
BOTH = pytest.mark.parametrize("provider", ["openai", "glm"])


def _settings(provider: str, *, base_url: str | None = None) -> ProviderSettings:
    _, key, base, model = ADAPTERS[provider]
    return ProviderSettings(
        name=provider,
        api_key=Secret(key),
        base_url=base_url or base,
        model=model,
        timeout_s=5.0,
    )


def _body(provider: str, request: ChatRequest) -> dict[str, object]:
    adapter = ADAPTERS[provider][0]
    body: dict[str, object] = json.loads(adapter.build_request(request, _settings(provider)).body)
    return body


def _ok(provider: str, data: object, *, model: str = "asked-model") -> ProviderReply:
    reply = HttpReply(200, {"content-type": "application/json"}, json.dumps(data).encode())
    return ADAPTERS[provider][0].parse_reply(reply, model=model)


def _fail(
    provider: str,
    status: int,
    body: object | bytes,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ProviderError) as caught:
        ADAPTERS[provider][0].parse_reply(HttpReply(status, headers or {}, raw), model="m")
    return caught.value


def _user(text: str) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),))


def _completion(message: object = None, **extra: object) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "finish_reason": "stop"}
    if message is not None:
        choice["message"] = message
    return {"id": "chatcmpl-1", "model": "served-model", "choices": [choice], **extra}


def _openai_error(message: str, type_: str, code: str | None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _glm_error(code: object, message: str = "msg") -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


# shared/reference/openai.md §4 and glm.md §4.
OPENAI_REFERENCE = {
    "id": "chatcmpl-AbC123",
    "object": "chat.completion",
    "created": 1764150000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": '{"severity":"high"}',
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 31,
        "completion_tokens": 9,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_0ba0d124f1",
}
GLM_REFERENCE = {
    "id": "20251126113300a1b2c3d4e5f64a1b",
    "request_id": "20251126113300a1b2c3d4e5f64a1b",
    "created": 1764156780,
    "model": "glm-4.5",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": '{"severity":"high"}',
                "reasoning_content": "The user wants a classification...",
            },
        }
    ],
    "usage": {
        "prompt_tokens": 28,
        "completion_tokens": 15,
        "total_tokens": 43,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
}


class TestBuildRequest:
    """ChatRequest → the chat completions HTTP request."""

    def test_openai_url_method_and_headers(self) -> None:
        """OpenAI: POST {base}/chat/completions with the key as a Bearer token, nowhere else."""
        built = OpenAIAdapter().build_request(_user("hi"), _settings("openai"))
        assert built.method == "POST"
        assert built.url == "https://api.openai.com/v1/chat/completions"
        assert built.headers["authorization"] == f"Bearer {OPENAI_KEY}"
        assert built.headers["content-type"] == "application/json"
        assert OPENAI_KEY not in built.url
        assert OPENAI_KEY.encode() not in built.body

    @pytest.mark.parametrize("base", [BIGMODEL_BASE, ZAI_BASE])
    def test_glm_url_for_bigmodel_and_zai(self, base: str) -> None:
        """GLM: the same path under the BigModel and Z.ai bases, raw key as Bearer, English."""
        built = GLMAdapter().build_request(_user("hi"), _settings("glm", base_url=base))
        assert built.url == f"{base}/chat/completions"
        assert built.headers["authorization"] == f"Bearer {GLM_KEY}"
        assert built.headers["accept-language"] == "en-US,en"
        assert GLM_KEY.encode() not in built.body

    @BOTH
    def test_minimal_body(self, provider: str) -> None:
        """Without options the body is the configured model and one user message."""
        assert _body(provider, _user("Summarise this.")) == {
            "model": ADAPTERS[provider][3],
            "messages": [{"role": "user", "content": "Summarise this."}],
        }

    @BOTH
    def test_system_first_then_turns_in_order(self, provider: str) -> None:
        """The system prompt is the first message; user and assistant turns keep their roles."""
        request = ChatRequest(
            messages=(Message("user", "one"), Message("assistant", "two"), Message("user", "3")),
            system="You are terse.",
        )
        assert _body(provider, request)["messages"] == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "3"},
        ]

    @pytest.mark.parametrize(
        ("provider", "limit_field"), [("openai", "max_completion_tokens"), ("glm", "max_tokens")]
    )
    def test_options(self, provider: str, limit_field: str) -> None:
        """Temperature, the output limit (OpenAI: the current field; GLM: max_tokens), JSON mode."""
        request = ChatRequest(
            messages=(Message("user", "Reply in JSON."),),
            temperature=0.2,
            max_tokens=256,
            json_mode=True,
        )
        body = _body(provider, request)
        assert body["temperature"] == 0.2
        assert body[limit_field] == 256
        assert body["response_format"] == {"type": "json_object"}
        other = {"max_tokens", "max_completion_tokens"} - {limit_field}
        assert not other & set(body)

    @BOTH
    def test_unset_options_are_left_out_and_zero_temperature_is_kept(self, provider: str) -> None:
        """Only options that are set appear; temperature 0.0 counts as set."""
        body = _body(provider, ChatRequest(messages=(Message("user", "hi"),), temperature=0.0))
        assert body["temperature"] == 0.0
        assert not {"max_tokens", "max_completion_tokens", "response_format"} & set(body)

    @BOTH
    def test_request_model_overrides_settings_model(self, provider: str) -> None:
        """A model on the request wins over the provider's configured model."""
        request = ChatRequest(messages=(Message("user", "hi"),), model="special-model")
        assert _body(provider, request)["model"] == "special-model"

    @BOTH
    def test_non_ascii_text_survives(self, provider: str) -> None:
        """Non-ASCII prompt text is sent as UTF-8 and decodes back unchanged."""
        body = _body(provider, _user("日志摘要 — résumé"))
        assert body["messages"] == [{"role": "user", "content": "日志摘要 — résumé"}]

    def test_registry(self) -> None:
        """The registry has an OpenAI and a GLM adapter, named after their providers."""
        assert {"openai", "glm"} <= set(supported_providers())
        openai, glm = adapter_for("openai"), adapter_for("glm")
        assert isinstance(openai, OpenAIAdapter)
        assert isinstance(glm, GLMAdapter)
        assert (openai.name, glm.name) == ("openai", "glm")


class TestParseSuccess:
    """A 200 body → ProviderReply."""

    def test_openai_reference_body(self) -> None:
        """The OpenAI reference body parses to its text, finish reason, model, id and usage."""
        reply = _ok("openai", OPENAI_REFERENCE)
        assert reply.text == '{"severity":"high"}'
        assert reply.finish_reason == "stop"
        assert reply.model == "gpt-4o-mini-2024-07-18"
        assert reply.response_id == "chatcmpl-AbC123"
        assert reply.usage == Usage(input_tokens=31, output_tokens=9)

    def test_glm_reference_body(self) -> None:
        """The GLM reference body parses; reasoning_content is not part of the text."""
        reply = _ok("glm", GLM_REFERENCE)
        assert reply.text == '{"severity":"high"}'
        assert reply.finish_reason == "stop"
        assert reply.model == "glm-4.5"
        assert reply.response_id == "20251126113300a1b2c3d4e5f64a1b"
        assert reply.usage == Usage(input_tokens=28, output_tokens=15)

    @BOTH
    def test_full_usage_mapping(self, provider: str) -> None:
        """prompt → input (cached inside it), completion → output (reasoning inside it)."""
        usage = {
            "prompt_tokens": 1000,
            "completion_tokens": 420,
            "total_tokens": 1420,
            "prompt_tokens_details": {"cached_tokens": 400},
            "completion_tokens_details": {"reasoning_tokens": 300},
        }
        reply = _ok(provider, _completion({"content": "x"}, usage=usage))
        assert reply.usage == Usage(
            input_tokens=1000, output_tokens=420, cached_tokens=400, reasoning_tokens=300
        )
        assert reply.usage.total_tokens == 1420

    @BOTH
    @pytest.mark.parametrize(
        ("usage", "expected"),
        [
            ({"prompt_tokens": 9, "completion_tokens": 2}, Usage(9, 2)),
            ({"prompt_tokens": 9, "prompt_tokens_details": None}, Usage(9)),
            ({"completion_tokens": 3, "completion_tokens_details": {}}, Usage(output_tokens=3)),
            ({}, Usage()),
            ({"prompt_tokens": None, "completion_tokens": "12"}, Usage()),
            (
                {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 50}},
                Usage(input_tokens=5, cached_tokens=5),
            ),
            (
                {"completion_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 9}},
                Usage(output_tokens=4, reasoning_tokens=4),
            ),
        ],
    )
    def test_absent_or_odd_usage_fields(
        self, provider: str, usage: dict[str, object], expected: Usage
    ) -> None:
        """Missing or unusable counts read as 0; parts are clamped to their wholes."""
        assert _ok(provider, _completion({"content": "x"}, usage=usage)).usage == expected

    @BOTH
    @pytest.mark.parametrize("usage", ["absent", None, "text", 7])
    def test_absent_usage_gives_none(self, provider: str, usage: object) -> None:
        """Without a usage object the usage is None, so the pipeline can estimate."""
        data = _completion({"content": "x"})
        if usage != "absent":
            data["usage"] = usage
        assert _ok(provider, data).usage is None

    @BOTH
    @pytest.mark.parametrize(
        "message",
        [
            {"role": "assistant", "content": None, "refusal": "I can't help with that."},
            {"role": "assistant"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
            "not an object",
        ],
    )
    def test_null_or_absent_content_is_empty_text(self, provider: str, message: object) -> None:
        """Null or absent content (refusals, tool calls) gives empty text, not an error."""
        assert _ok(provider, _completion(message)).text == ""

    @BOTH
    def test_content_part_array_is_joined(self, provider: str) -> None:
        """Content sent as an array of text parts is joined; other parts are skipped."""
        content = [
            {"type": "text", "text": "Hel"},
            {"type": "image_url", "image_url": {}},
            {"type": "text", "text": "lo"},
        ]
        assert _ok(provider, _completion({"content": content})).text == "Hello"

    @BOTH
    def test_no_message_or_empty_choices(self, provider: str) -> None:
        """A choice without a message, or no choice at all, gives empty text."""
        assert _ok(provider, _completion()).text == ""
        reply = _ok(provider, {"id": "x", "choices": []})
        assert (reply.text, reply.finish_reason) == ("", "unknown")

    @BOTH
    def test_null_finish_reason_is_unknown(self, provider: str) -> None:
        """A null finish_reason reads "unknown"."""
        data = {"choices": [{"message": {"content": "x"}, "finish_reason": None}]}
        assert _ok(provider, data).finish_reason == "unknown"

    @BOTH
    @pytest.mark.parametrize(
        "reason",
        [
            "length",
            "content_filter",
            "tool_calls",
            "sensitive",
            "network_error",
            "model_context_window_exceeded",
            "new_reason_2027",
        ],
    )
    def test_finish_reasons_pass_through(self, provider: str, reason: str) -> None:
        """Any finish_reason, known or new, passes through unchanged."""
        data = {"choices": [{"message": {"content": "x"}, "finish_reason": reason}]}
        assert _ok(provider, data).finish_reason == reason

    @BOTH
    def test_model_and_id_fall_back(self, provider: str) -> None:
        """Without model the reply names the requested model; without id the id is None."""
        reply = _ok(provider, {"choices": [{"message": {"content": "x"}}]}, model="asked")
        assert reply.model == "asked"
        assert reply.response_id is None

    @BOTH
    @pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b'"t"', b"", b"\xff\xfe"])
    def test_non_object_200_is_malformed(self, provider: str, body: bytes) -> None:
        """A 200 whose body is not a JSON object raises a retryable MalformedResponseError."""
        with pytest.raises(MalformedResponseError) as caught:
            ADAPTERS[provider][0].parse_reply(HttpReply(200, {}, body), model="m")
        assert caught.value.retryable is True
        assert caught.value.status == 200

    @BOTH
    def test_object_without_choices_is_malformed(self, provider: str) -> None:
        """A 200 JSON object without a choices list is not a chat completion."""
        with pytest.raises(MalformedResponseError):
            _ok(provider, {"id": "x", "usage": {"prompt_tokens": 1}})

    def test_glm_error_inside_a_200_is_classified(self) -> None:
        """A GLM error envelope delivered with HTTP 200 still raises by its business code."""
        with pytest.raises(QuotaExhaustedError) as caught:
            _ok("glm", _glm_error("1113", "Insufficient balance or no resource package."))
        assert caught.value.status == 200
        assert caught.value.provider_code == "1113"

    def test_openai_error_inside_a_200_is_classified(self) -> None:
        """An OpenAI error object inside a 200 raises by its type."""
        with pytest.raises(ServerError):
            _ok("openai", _openai_error("The server had an error", "server_error", None))
        with pytest.raises(BadRequestError):
            _ok("openai", _openai_error("bad", "invalid_request_error", None))


class TestOpenAIErrors:
    """Non-200 OpenAI replies → typed ProviderErrors."""

    def test_invalid_key_is_authentication_error_without_the_echoed_key(self) -> None:
        """401 invalid_api_key is an AuthenticationError; the echoed key part is redacted."""
        body = _openai_error(
            "Incorrect API key provided: sk-proj-****abcd. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
        error = _fail("openai", 401, body)
        assert type(error) is AuthenticationError
        assert error.provider == "openai"
        assert error.provider_code == "invalid_api_key"
        assert error.retryable is False
        assert "sk-proj" not in str(error)
        assert "abcd" not in str(error)
        assert "Incorrect API key provided: <redacted>. You can find" in error.message

    def test_missing_key_is_authentication_error(self) -> None:
        """401 with a null code (no key sent) is an AuthenticationError."""
        body = _openai_error("You didn't provide an API key.", "invalid_request_error", None)
        error = _fail("openai", 401, body)
        assert type(error) is AuthenticationError
        assert error.provider_code == "invalid_request_error"

    @pytest.mark.parametrize(
        ("status", "type_", "code", "cls"),
        [
            (400, "invalid_request_error", "context_length_exceeded", BadRequestError),
            (400, "invalid_request_error", None, BadRequestError),
            (
                403,
                "request_forbidden",
                "unsupported_country_region_territory",
                PermissionDeniedError,
            ),
            (404, "invalid_request_error", "model_not_found", NotFoundError),
            (404, "invalid_request_error", None, NotFoundError),
            (409, "invalid_request_error", None, ServerError),
            (422, "invalid_request_error", None, BadRequestError),
            (500, "server_error", None, ServerError),
            (502, "server_error", None, ServerError),
            (503, "server_error", None, OverloadedError),
        ],
    )
    def test_status_and_code_classification(
        self, status: int, type_: str, code: str | None, cls: type[ProviderError]
    ) -> None:
        """Each reference error row maps to its class; the code (or type) is kept."""
        error = _fail("openai", status, _openai_error("boom", type_, code))
        assert type(error) is cls
        assert error.status == status
        assert error.provider_code == (code or type_)
        assert error.message == "boom"

    def test_model_not_found_under_another_status(self) -> None:
        """The model_not_found code means NotFoundError whatever the status."""
        body = _openai_error("The model `gpt-x` does not exist", "invalid_request_error", None)
        body["error"]["code"] = "model_not_found"  # type: ignore[index]
        assert type(_fail("openai", 400, body)) is NotFoundError

    @pytest.mark.parametrize(
        ("headers", "message", "seconds"),
        [
            ({"retry-after-ms": "1500", "retry-after": "2"}, "", 1.5),
            ({"Retry-After": "20"}, "", 20.0),
            ({}, "Please try again in 2s. Visit ...", 2.0),
            ({}, "Please try again in 20ms.", 0.02),
            ({}, "Please try again in 1m30.5s.", 90.5),
            (
                {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"},
                "",
                360,
            ),
            (
                {
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "1s",
                    "x-ratelimit-remaining-tokens": "0",
                    "x-ratelimit-reset-tokens": "9ms",
                },
                "",
                1.0,
            ),
            ({"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-requests": "1s"}, "", None),
            ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, "", None),
            ({}, "", None),
        ],
    )
    def test_rate_limit_hint(
        self, headers: dict[str, str], message: str, seconds: float | None
    ) -> None:
        """retry-after-ms, retry-after, the message, then the exhausted x-ratelimit-reset-*."""
        body = _openai_error(message or "Rate limit reached", "requests", "rate_limit_exceeded")
        error = _fail("openai", 429, body, headers)
        assert type(error) is RateLimitError
        assert error.retryable is True
        assert error.provider_code == "rate_limit_exceeded"
        assert error.retry_after_s == (None if seconds is None else pytest.approx(seconds))

    def test_insufficient_quota_is_not_retryable(self) -> None:
        """429 insufficient_quota is billing: QuotaExhaustedError, no retry hint."""
        body = _openai_error(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
        error = _fail("openai", 429, body, {"retry-after": "20"})
        assert type(error) is QuotaExhaustedError
        assert error.retryable is False
        assert error.retry_after_s is None

    def test_bare_429_still_reads_the_headers(self) -> None:
        """A 429 without a JSON body is a RateLimitError with the header hint."""
        error = _fail("openai", 429, b"Too Many Requests", {"retry-after": "3"})
        assert type(error) is RateLimitError
        assert error.retry_after_s == 3.0

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (400, BadRequestError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (500, ServerError),
            (502, ServerError),
            (503, OverloadedError),
            (504, ServerError),
        ],
    )
    def test_non_json_error_body_classified_by_status(
        self, status: int, cls: type[ProviderError]
    ) -> None:
        """An HTML proxy page or a JSON body without "error" is classified by status alone."""
        assert type(_fail("openai", status, b"<html>Bad Gateway</html>")) is cls
        assert type(_fail("openai", status, {"detail": "x"})) is cls

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("12ms", 0.012), ("1s", 1.0), ("6m0s", 360.0), ("1m30.5s", 90.5), ("1h2m3s", 3723.0)],
    )
    def test_go_durations(self, text: str, seconds: float) -> None:
        """x-ratelimit-reset-* durations parse with ms, s, m and h units."""
        assert parse_duration(text) == pytest.approx(seconds)

    @pytest.mark.parametrize("text", ["", "soon", "12", "1d", "s"])
    def test_bad_durations(self, text: str) -> None:
        """Anything that is not a duration gives None."""
        assert parse_duration(text) is None

    def test_retry_hint_header_case_does_not_matter(self) -> None:
        """Header names are matched case-insensitively."""
        assert retry_hint({"Retry-After-Ms": "250"}, "") == pytest.approx(0.25)


class TestGLMErrors:
    """Non-200 GLM replies → typed ProviderErrors, decided by the business code."""

    @pytest.mark.parametrize(
        ("status", "code", "cls"),
        [
            (429, "1113", QuotaExhaustedError),
            (429, "1302", RateLimitError),
            (429, "1303", RateLimitError),
            (429, "1304", QuotaExhaustedError),
            (429, "1305", OverloadedError),
            (429, "1312", OverloadedError),
            (429, "1308", QuotaExhaustedError),
            (429, "1309", QuotaExhaustedError),
            (429, "1310", QuotaExhaustedError),
            (401, "1000", AuthenticationError),
            (401, "1001", AuthenticationError),
            (401, "1002", AuthenticationError),
            (401, "1003", AuthenticationError),
            (401, "1004", AuthenticationError),
            (401, "1111", AuthenticationError),
            (429, "1110", PermissionDeniedError),
            (429, "1112", PermissionDeniedError),
            (429, "1121", PermissionDeniedError),
            (403, "1220", PermissionDeniedError),
            (400, "1210", BadRequestError),
            (400, "1213", BadRequestError),
            (400, "1214", BadRequestError),
            (400, "1215", BadRequestError),
            (400, "1261", BadRequestError),
            (400, "1301", BadRequestError),
            (400, "1211", NotFoundError),
            (404, "1222", NotFoundError),
            (500, "500", ServerError),
            (500, "1234", ServerError),
        ],
    )
    def test_business_codes(self, status: int, code: str, cls: type[ProviderError]) -> None:
        """Each business code maps to its class, whatever HTTP status it shares."""
        error = _fail("glm", status, _glm_error(code, "some message"))
        assert type(error) is cls
        assert error.provider == "glm"
        assert error.provider_code == code
        assert error.status == status
        assert error.message == "some message"

    def test_out_of_balance_429_is_not_retryable(self) -> None:
        """1113 arrives as 429 without headers, yet is billing: never retried."""
        error = _fail("glm", 429, _glm_error("1113", "余额不足或无可用资源包,请充值。"))
        assert type(error) is QuotaExhaustedError
        assert error.retryable is False
        assert error.retry_after_s is None
        assert "余额不足" in str(error)

    def test_concurrency_429_is_retryable_without_hint(self) -> None:
        """1302 is a retryable RateLimitError with no hint (Zhipu sends none)."""
        error = _fail("glm", 429, _glm_error("1302", "Rate limit reached for requests"))
        assert type(error) is RateLimitError
        assert error.retryable is True
        assert error.retry_after_s is None

    def test_retry_after_from_a_proxy_is_honoured_on_rate_limits_only(self) -> None:
        """A Retry-After header (added by a proxy) reaches rate limits, not quota errors."""
        headers = {"Retry-After": "4"}
        assert _fail("glm", 429, _glm_error("1302"), headers).retry_after_s == 4.0
        assert _fail("glm", 429, _glm_error("1113"), headers).retry_after_s is None

    def test_numeric_code_is_tolerated(self) -> None:
        """A numeric business code reads like the string one."""
        error = _fail("glm", 429, _glm_error(1113))
        assert type(error) is QuotaExhaustedError
        assert error.provider_code == "1113"

    def test_anthropic_style_wrapping(self) -> None:
        """The Anthropic-compatible surface's wrapped error is read by its code too."""
        body = {
            "type": "error",
            "error": {"type": "rate_limit_error", "code": "1113", "message": "no balance"},
        }
        assert type(_fail("glm", 429, body)) is QuotaExhaustedError

    def test_legacy_code_msg_shape(self) -> None:
        """The older {"code": ..., "msg": ...} body is understood."""
        error = _fail("glm", 400, {"code": 1261, "msg": "Prompt 超长", "success": False})
        assert type(error) is BadRequestError
        assert error.provider_code == "1261"
        assert error.message == "Prompt 超长"

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (400, BadRequestError),
            (401, AuthenticationError),
            (404, NotFoundError),
            (429, RateLimitError),
            (434, BadRequestError),
            (500, ServerError),
            (503, OverloadedError),
        ],
    )
    def test_unknown_code_or_body_falls_back_to_status(
        self, status: int, cls: type[ProviderError]
    ) -> None:
        """An unknown code, or no readable body, is classified by HTTP status."""
        assert type(_fail("glm", status, _glm_error("9999"))) is cls
        assert type(_fail("glm", status, b"<html>nginx</html>")) is cls

    def test_missing_message(self) -> None:
        """An error without a message still gets a readable one."""
        error = _fail("glm", 500, {"error": {"code": "500"}})
        assert type(error) is ServerError
        assert error.message == "no error details in the response"


class TestNoKeyInErrors:
    """No error ever repeats the API key."""

    @pytest.mark.parametrize(
        ("provider", "status", "body"),
        [
            ("openai", 401, _openai_error(f"Incorrect API key provided: {OPENAI_KEY}.", "x", None)),
            ("openai", 401, _openai_error(f"Incorrect API key provided: {OPENAI_KEY}", "x", None)),
            ("openai", 429, _openai_error("Rate limit reached", "requests", "rate_limit_exceeded")),
            ("openai", 502, b"bad gateway"),
            ("glm", 401, _glm_error("1002", "Authorization Token非法")),
            ("glm", 429, _glm_error("1113")),
            ("glm", 500, b"oops"),
        ],
    )
    def test_no_error_mentions_the_key(self, provider: str, status: int, body: object) -> None:
        """No message, repr or args of the error contain the key the request was sent with."""
        key = ADAPTERS[provider][1]
        built = ADAPTERS[provider][0].build_request(_user("hi"), _settings(provider))
        assert built.headers["authorization"] == f"Bearer {key}"
        error = _fail(provider, status, body)
        for shown in (str(error), repr(error), error.message, repr(error.args)):
            assert key not in shown
