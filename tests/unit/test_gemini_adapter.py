"""The Gemini adapter: request building and reply/error parsing, on canned bytes."""

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
from nexus_llm.providers import adapter_for
from nexus_llm.providers.gemini import GeminiAdapter
from nexus_llm.types import ChatRequest, HttpReply, Message, ProviderReply, Usage
from tests.support import GEMINI_KEY_INVALID_BODY

FAKE_KEY = "AIzaFAKE-key-do-not-log-0123456789"
BASE = "https://generativelanguage.googleapis.com"
MODEL = "gemini-2.5-flash"


def _settings(base_url: str = BASE, model: str = MODEL) -> ProviderSettings:
    return ProviderSettings(
        name="gemini", api_key=Secret(FAKE_KEY), base_url=base_url, model=model, timeout_s=5.0
    )


def _body(request: ChatRequest, settings: ProviderSettings | None = None) -> dict[str, object]:
    built = GeminiAdapter().build_request(request, settings or _settings())
    body: dict[str, object] = json.loads(built.body)
    return body


def _ok(data: object, *, model: str = MODEL) -> ProviderReply:
    reply = HttpReply(200, {"content-type": "application/json"}, json.dumps(data).encode())
    return GeminiAdapter().parse_reply(reply, model=model)


def _fail(status: int, body: object | bytes) -> ProviderError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ProviderError) as caught:
        GeminiAdapter().parse_reply(HttpReply(status, {}, raw), model=MODEL)
    return caught.value


def _user(text: str) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),))


# Error bodies from shared/reference/gemini.md §6.
QUOTA_429_MINUTE = {
    "error": {
        "code": 429,
        "message": (
            "You exceeded your current quota, please check your plan and billing details. "
            "Please retry in 40.5s."
        ),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": (
                            "generativelanguage.googleapis.com/generate_content_free_tier_requests"
                        ),
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": MODEL},
                        "quotaValue": "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "40s"},
        ],
    }
}
OVERLOADED_503 = {
    "error": {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
}


def _simple(code: int, status: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "status": status}}


def _with_retry_info(delay: str) -> dict[str, object]:
    body = json.loads(json.dumps(QUOTA_429_MINUTE))
    body["error"]["message"] = "You exceeded your current quota."
    body["error"]["details"][2]["retryDelay"] = delay
    return dict(body)


def _daily_quota() -> dict[str, object]:
    body = json.loads(json.dumps(QUOTA_429_MINUTE))
    violation = body["error"]["details"][0]["violations"][0]
    violation["quotaId"] = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    return dict(body)


class TestBuildRequest:
    """ChatRequest → the generateContent HTTP request."""

    def test_url_method_and_headers(self) -> None:
        """The URL is {base}/v1beta/models/{model}:generateContent and the key is a header."""
        built = GeminiAdapter().build_request(_user("hi"), _settings())
        assert built.method == "POST"
        assert built.url == f"{BASE}/v1beta/models/{MODEL}:generateContent"
        assert built.headers["x-goog-api-key"] == FAKE_KEY
        assert built.headers["content-type"] == "application/json"
        assert FAKE_KEY not in built.url
        assert FAKE_KEY.encode() not in built.body

    def test_request_model_overrides_settings_model(self) -> None:
        """A model on the request wins over the provider's configured model."""
        request = ChatRequest(messages=(Message("user", "hi"),), model="gemini-2.5-pro")
        built = GeminiAdapter().build_request(request, _settings(base_url="http://127.0.0.1:8080"))
        assert built.url == "http://127.0.0.1:8080/v1beta/models/gemini-2.5-pro:generateContent"

    def test_minimal_body_has_only_contents(self) -> None:
        """Without options the body is just contents, with the user role."""
        body = _body(_user("Summarise this."))
        assert body == {"contents": [{"role": "user", "parts": [{"text": "Summarise this."}]}]}

    def test_roles_map_assistant_to_model(self) -> None:
        """Assistant turns go out with role "model", user turns with role "user", in order."""
        request = ChatRequest(
            messages=(
                Message("user", "one"),
                Message("assistant", "two"),
                Message("user", "three"),
            )
        )
        contents = _body(request)["contents"]
        assert contents == [
            {"role": "user", "parts": [{"text": "one"}]},
            {"role": "model", "parts": [{"text": "two"}]},
            {"role": "user", "parts": [{"text": "three"}]},
        ]

    def test_system_and_generation_config_in_camel_case(self) -> None:
        """System text goes to systemInstruction; options to camelCase generationConfig keys."""
        request = ChatRequest(
            messages=(Message("user", "hi"),),
            system="You are terse.",
            temperature=0.2,
            max_tokens=1024,
            json_mode=True,
        )
        body = _body(request)
        assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
        assert body["generationConfig"] == {
            "temperature": 0.2,
            "maxOutputTokens": 1024,
            "responseMimeType": "application/json",
        }
        assert "system_instruction" not in body
        assert "generation_config" not in body

    @pytest.mark.parametrize(
        ("options", "expected"),
        [
            ({"temperature": 0.0}, {"temperature": 0.0}),
            ({"max_tokens": 5}, {"maxOutputTokens": 5}),
            ({"json_mode": True}, {"responseMimeType": "application/json"}),
        ],
    )
    def test_generation_config_only_holds_what_is_set(
        self, options: dict[str, object], expected: dict[str, object]
    ) -> None:
        """Each generationConfig key appears only when its option is set (0.0 counts as set)."""
        request = ChatRequest(messages=(Message("user", "hi"),), **options)  # type: ignore[arg-type]
        assert _body(request)["generationConfig"] == expected

    def test_no_generation_config_or_system_when_unset(self) -> None:
        """No generationConfig and no systemInstruction keys when nothing is set."""
        body = _body(_user("hi"))
        assert "generationConfig" not in body
        assert "systemInstruction" not in body

    def test_non_ascii_text_survives(self) -> None:
        """Non-ASCII prompt text is sent as UTF-8 and decodes back unchanged."""
        body = _body(_user("日志摘要 — résumé"))
        assert body["contents"] == [{"role": "user", "parts": [{"text": "日志摘要 — résumé"}]}]

    def test_adapter_registry(self) -> None:
        """The registry returns a Gemini adapter for "gemini"."""
        adapter = adapter_for("gemini")
        assert isinstance(adapter, GeminiAdapter)
        assert adapter.name == "gemini"


class TestParseSuccess:
    """A 200 body → ProviderReply."""

    def test_reference_body(self) -> None:
        """The reference §4 body parses to its text, finish reason, model, id and usage."""
        reply = _ok(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": '{"status":"ok"}'}]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 42,
                    "candidatesTokenCount": 12,
                    "thoughtsTokenCount": 87,
                    "cachedContentTokenCount": 0,
                    "toolUsePromptTokenCount": 0,
                    "totalTokenCount": 141,
                },
                "modelVersion": "gemini-2.5-flash-001",
                "responseId": "mYQnaf2xB8",
            }
        )
        assert reply.text == '{"status":"ok"}'
        assert reply.finish_reason == "STOP"
        assert reply.model == "gemini-2.5-flash-001"
        assert reply.response_id == "mYQnaf2xB8"
        assert reply.usage == Usage(
            input_tokens=42, output_tokens=12 + 87, cached_tokens=0, reasoning_tokens=87
        )

    def test_full_usage_mapping(self) -> None:
        """input = prompt + toolUsePrompt; output = candidates + thoughts; cached and reasoning."""
        reply = _ok(
            {
                "candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}],
                "usageMetadata": {
                    "promptTokenCount": 1000,
                    "toolUsePromptTokenCount": 50,
                    "cachedContentTokenCount": 400,
                    "candidatesTokenCount": 120,
                    "thoughtsTokenCount": 300,
                    "totalTokenCount": 1470,
                },
            }
        )
        assert reply.usage is not None
        assert reply.usage.input_tokens == 1050
        assert reply.usage.output_tokens == 420
        assert reply.usage.reasoning_tokens == 300
        assert reply.usage.cached_tokens == 400
        assert reply.usage.total_tokens == 1470

    @pytest.mark.parametrize(
        ("metadata", "expected"),
        [
            ({"promptTokenCount": 9, "totalTokenCount": 9}, Usage(input_tokens=9)),
            ({"candidatesTokenCount": 3}, Usage(output_tokens=3)),
            ({"thoughtsTokenCount": 7}, Usage(output_tokens=7, reasoning_tokens=7)),
            ({}, Usage()),
            (
                {"promptTokenCount": None, "candidatesTokenCount": "12"},
                Usage(),
            ),
        ],
    )
    def test_missing_usage_fields_are_zero(
        self, metadata: dict[str, object], expected: Usage
    ) -> None:
        """Omitted (or unusable) usageMetadata counts read as 0."""
        reply = _ok(
            {"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": metadata}
        )
        assert reply.usage == expected

    def test_absent_usage_metadata_gives_none(self) -> None:
        """Without usageMetadata the usage is None (so the pipeline can estimate)."""
        reply = _ok(
            {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}
        )
        assert reply.usage is None

    def test_model_falls_back_to_requested_model(self) -> None:
        """Without modelVersion the reply names the model that was asked for."""
        reply = _ok(
            {"candidates": [{"content": {"parts": [{"text": "x"}]}}]}, model="gemini-2.5-pro"
        )
        assert reply.model == "gemini-2.5-pro"
        assert reply.response_id is None

    def test_absent_parts_on_max_tokens(self) -> None:
        """MAX_TOKENS on a thinking model with no parts gives empty text, not an error."""
        reply = _ok(
            {
                "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
                "usageMetadata": {"promptTokenCount": 5, "thoughtsTokenCount": 64},
            }
        )
        assert reply.text == ""
        assert reply.finish_reason == "MAX_TOKENS"
        assert reply.usage == Usage(input_tokens=5, output_tokens=64, reasoning_tokens=64)

    def test_absent_content(self) -> None:
        """A candidate without content gives empty text."""
        reply = _ok({"candidates": [{"finishReason": "SAFETY"}]})
        assert reply.text == ""
        assert reply.finish_reason == "SAFETY"

    def test_blocked_prompt(self) -> None:
        """A blocked prompt (promptFeedback.blockReason, no candidates) finishes BLOCKED_SAFETY."""
        reply = _ok(
            {
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
                "modelVersion": MODEL,
            }
        )
        assert reply.finish_reason == "BLOCKED_SAFETY"
        assert reply.text == ""
        assert reply.usage == Usage(input_tokens=9)

    @pytest.mark.parametrize(
        "reason", ["RECITATION", "SPII", "MALFORMED_FUNCTION_CALL", "SOMETHING_NEW_2027"]
    )
    def test_finish_reasons_pass_through(self, reason: str) -> None:
        """Any finishReason string, known or new, passes through unchanged."""
        reply = _ok(
            {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
        )
        assert reply.finish_reason == reason

    def test_thought_parts_are_excluded_and_parts_joined(self) -> None:
        """Thought parts are left out of the text; the remaining text parts are concatenated."""
        reply = _ok(
            {
                "candidates": [
                    {
                        "content": {
                            "parts": [
                                {"text": "thinking hard...", "thought": True},
                                {"text": "Hel"},
                                {"functionCall": {"name": "f"}},
                                {"text": "lo"},
                            ]
                        },
                        "finishReason": "STOP",
                    }
                ]
            }
        )
        assert reply.text == "Hello"

    def test_non_json_200_is_malformed(self) -> None:
        """A 200 whose body is not JSON raises MalformedResponseError (retryable)."""
        with pytest.raises(MalformedResponseError) as caught:
            GeminiAdapter().parse_reply(HttpReply(200, {}, b"<html>oops</html>"), model=MODEL)
        assert caught.value.retryable is True
        assert caught.value.status == 200

    @pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"", b"\xff\xfe"])
    def test_non_object_200_is_malformed(self, body: bytes) -> None:
        """A 200 whose body is not a JSON object raises MalformedResponseError."""
        with pytest.raises(MalformedResponseError):
            GeminiAdapter().parse_reply(HttpReply(200, {}, body), model=MODEL)


class TestErrors:
    """Non-200 replies → typed ProviderErrors."""

    def test_invalid_key_is_authentication_error(self) -> None:
        """400 with ErrorInfo reason API_KEY_INVALID is an AuthenticationError, not retryable."""
        error = _fail(400, GEMINI_KEY_INVALID_BODY)
        assert type(error) is AuthenticationError
        assert error.status == 400
        assert error.retryable is False
        assert error.error_type == "auth"
        assert error.provider == "gemini"
        assert error.provider_code == "INVALID_ARGUMENT"
        assert "API key not valid" in str(error)

    def test_other_400_is_bad_request(self) -> None:
        """A 400 without API_KEY_INVALID is a BadRequestError."""
        error = _fail(400, _simple(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
        assert type(error) is BadRequestError
        assert error.retryable is False

    def test_failed_precondition_400_is_bad_request(self) -> None:
        """A 400 FAILED_PRECONDITION (billing/region) is a BadRequestError."""
        error = _fail(400, _simple(400, "FAILED_PRECONDITION", "User location is not supported."))
        assert type(error) is BadRequestError
        assert error.provider_code == "FAILED_PRECONDITION"

    def test_401_is_authentication_error(self) -> None:
        """A 401 UNAUTHENTICATED is an AuthenticationError."""
        error = _fail(401, _simple(401, "UNAUTHENTICATED", "Request had invalid credentials."))
        assert type(error) is AuthenticationError

    def test_403_is_permission_denied(self) -> None:
        """A 403 PERMISSION_DENIED (no key sent) is a PermissionDeniedError."""
        error = _fail(
            403,
            _simple(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity).",
            ),
        )
        assert type(error) is PermissionDeniedError
        assert error.retryable is False

    def test_404_is_not_found(self) -> None:
        """A 404 for an unknown model is a NotFoundError."""
        error = _fail(
            404,
            _simple(
                404,
                "NOT_FOUND",
                "models/foo is not found for API version v1beta, or is not supported for "
                "generateContent.",
            ),
        )
        assert type(error) is NotFoundError
        assert error.retryable is False
        assert "models/foo" in str(error)

    @pytest.mark.parametrize(("delay", "seconds"), [("40s", 40.0), ("57.238747106s", 57.238747106)])
    def test_429_retry_info(self, delay: str, seconds: float) -> None:
        """A 429 RetryInfo retryDelay becomes RateLimitError.retry_after_s."""
        error = _fail(429, _with_retry_info(delay))
        assert type(error) is RateLimitError
        assert error.retry_after_s == pytest.approx(seconds)
        assert error.retryable is True
        assert error.provider_code == "RESOURCE_EXHAUSTED"

    def test_429_reference_body_prefers_retry_info(self) -> None:
        """With both RetryInfo ("40s") and "retry in 40.5s" in the text, RetryInfo wins."""
        error = _fail(429, QUOTA_429_MINUTE)
        assert type(error) is RateLimitError
        assert error.retry_after_s == 40.0

    def test_429_retry_in_message_only(self) -> None:
        """Without RetryInfo, "Please retry in 40.5s." in the message gives 40.5."""
        body = json.loads(json.dumps(QUOTA_429_MINUTE))
        body["error"]["details"] = body["error"]["details"][:2]
        error = _fail(429, body)
        assert type(error) is RateLimitError
        assert error.retry_after_s == 40.5

    def test_429_details_in_any_order(self) -> None:
        """RetryInfo is found by @type wherever it sits in details."""
        body = json.loads(json.dumps(QUOTA_429_MINUTE))
        body["error"]["details"].reverse()
        body["error"]["message"] = "quota"
        assert _fail(429, body).retry_after_s == 40.0

    def test_429_without_any_hint(self) -> None:
        """A bare 429 is a RateLimitError with no retry_after_s."""
        error = _fail(429, _simple(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted."))
        assert type(error) is RateLimitError
        assert error.retry_after_s is None

    def test_429_daily_quota_is_exhausted(self) -> None:
        """A 429 whose quotaId says PerDay is a QuotaExhaustedError and not retryable."""
        error = _fail(429, _daily_quota())
        assert type(error) is QuotaExhaustedError
        assert isinstance(error, RateLimitError)
        assert error.retryable is False
        assert error.error_type == "quota_exhausted"

    @pytest.mark.parametrize(
        ("status", "name", "cls"),
        [
            (500, "INTERNAL", ServerError),
            (503, "UNAVAILABLE", OverloadedError),
            (504, "DEADLINE_EXCEEDED", ServerError),
        ],
    )
    def test_server_errors(self, status: int, name: str, cls: type[ProviderError]) -> None:
        """500 and 504 are ServerError, 503 is OverloadedError; all retryable."""
        error = _fail(status, _simple(status, name, "try again"))
        assert type(error) is cls
        assert isinstance(error, ServerError)
        assert error.retryable is True
        assert error.status == status

    def test_503_reference_body(self) -> None:
        """The reference 503 body keeps its message."""
        error = _fail(503, OVERLOADED_503)
        assert type(error) is OverloadedError
        assert "overloaded" in str(error)

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (400, BadRequestError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (429, RateLimitError),
            (500, ServerError),
            (502, ServerError),
            (503, OverloadedError),
            (504, ServerError),
        ],
    )
    def test_non_json_error_body_classified_by_status(
        self, status: int, cls: type[ProviderError]
    ) -> None:
        """A non-JSON error body (an HTML proxy page) is classified by HTTP status alone."""
        error = _fail(status, b"<html><body>Bad Gateway</body></html>")
        assert type(error) is cls
        assert error.status == status

    def test_json_without_error_key_classified_by_status(self) -> None:
        """A JSON error body without "error" is classified by HTTP status alone."""
        assert type(_fail(503, {"oops": True})) is OverloadedError

    def test_one_element_array_body(self) -> None:
        """An error body that is a one-element JSON array is read like the object inside."""
        error = _fail(400, [GEMINI_KEY_INVALID_BODY])
        assert type(error) is AuthenticationError
        assert "API key not valid" in str(error)

    def test_array_429_keeps_retry_info(self) -> None:
        """A one-element array 429 still yields the RetryInfo delay."""
        error = _fail(429, [_with_retry_info("12s")])
        assert type(error) is RateLimitError
        assert error.retry_after_s == 12.0

    @pytest.mark.parametrize(
        ("cls", "retryable"),
        [
            (AuthenticationError, False),
            (PermissionDeniedError, False),
            (NotFoundError, False),
            (BadRequestError, False),
            (RateLimitError, True),
            (QuotaExhaustedError, False),
            (ServerError, True),
            (OverloadedError, True),
            (MalformedResponseError, True),
        ],
    )
    def test_retryable_flags(self, cls: type[ProviderError], retryable: bool) -> None:
        """Each error class says whether retrying can help."""
        assert cls("x", provider="gemini").retryable is retryable

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (400, GEMINI_KEY_INVALID_BODY),
            (403, _simple(403, "PERMISSION_DENIED", "denied")),
            (429, QUOTA_429_MINUTE),
            (429, _daily_quota()),
            (503, OVERLOADED_503),
            (502, b"bad gateway"),
        ],
    )
    def test_no_error_mentions_the_key(self, status: int, body: object) -> None:
        """No error message or repr contains the API key used for the request."""
        adapter = GeminiAdapter()
        built = adapter.build_request(_user("hi"), _settings())
        assert built.headers["x-goog-api-key"] == FAKE_KEY
        error = _fail(status, body)
        for shown in (str(error), repr(error), error.message, repr(error.args)):
            assert FAKE_KEY not in shown
