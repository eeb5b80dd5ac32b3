"""The emulated OpenAI and GLM chat completions over real HTTP: bodies, auth, validation, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from nexus_llm.emulator import Emulator, FaultKind
from nexus_llm.emulator._chat_completions import reply_text
from nexus_llm.emulator._gemini import count_tokens
from nexus_llm.emulator._glm import refusal_code, sign_token
from nexus_llm.emulator._openai import duration

OPENAI_CHAT = "/v1/chat/completions"
GLM_CHAT = "/api/paas/v4/chat/completions"
RIGHT = "right"
Post = Callable[..., httpx.Response]
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
}


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    """An HTTP client on the emulator's root URL, closed after the test."""
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as client:
        yield client


def _poster(http: httpx.Client, emulator: Emulator, provider: str, path: str, model: str) -> Post:
    def post(
        body: object = None,
        *,
        text: str = "Hello, world!",
        key: str | None = RIGHT,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        **fields: object,
    ) -> httpx.Response:
        if body is None:
            body = {"model": model, "messages": [{"role": "user", "content": text}], **fields}
        sent = dict(headers or {})
        if key is not None:
            sent["authorization"] = f"Bearer {emulator.key_for(provider) if key == RIGHT else key}"
        if isinstance(body, bytes):
            return http.post(path, content=body, headers=sent, timeout=timeout)
        return http.post(path, json=body, headers=sent, timeout=timeout)

    return post


@pytest.fixture
def openai(http: httpx.Client, emulator: Emulator) -> Post:
    """POST a chat completion to the emulated OpenAI with the right key unless told otherwise."""
    return _poster(http, emulator, "openai", OPENAI_CHAT, "gpt-4o-mini")


@pytest.fixture
def glm(http: httpx.Client, emulator: Emulator) -> Post:
    """POST a chat completion to the emulated GLM with the right key unless told otherwise."""
    return _poster(http, emulator, "glm", GLM_CHAT, "glm-4.5")


def _openai_error(response: httpx.Response) -> dict[str, object]:
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert response.headers["content-type"] == "application/json"
    assert set(response.headers) >= RATE_LIMIT_HEADERS
    return error


def _glm_error(response: httpx.Response) -> dict[str, object]:
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert isinstance(error["code"], str)
    assert not {"retry-after", "x-ratelimit-limit-requests"} & set(response.headers)
    return error


class TestRegistry:
    """Both providers are registered on their real base-URL paths."""

    def test_providers_keys_and_base_urls(self, emulator: Emulator) -> None:
        """openai is served under /v1 and glm under /api/paas/v4, each with its own key."""
        assert {"openai", "glm"} <= set(emulator.providers)
        assert emulator.base_url_for("openai") == emulator.base_url + "/v1"
        assert emulator.base_url_for("glm") == emulator.base_url + "/api/paas/v4"
        assert emulator.key_for("openai") == "emulator-openai-key"
        assert emulator.key_for("glm") == "emulator-glm-key"

    def test_requests_are_counted_per_provider(
        self, emulator: Emulator, openai: Post, glm: Post
    ) -> None:
        """Each provider counts its own requests, errors included."""
        openai()
        openai(key="wrong")
        glm()
        assert emulator.request_count("openai") == 2
        assert emulator.request_count("glm") == 1
        assert emulator.request_count("gemini") == 0

    def test_anthropic_paths_are_not_openai_s(self, emulator: Emulator, http: httpx.Client) -> None:
        """/v1/messages belongs to Anthropic even though it sits under /v1/."""
        http.post("/v1/messages", json={})
        http.post("/v1/completions", json={})
        assert emulator.request_count("openai") == 1
        assert emulator.request_count("anthropic") == 1


class TestOpenAISuccess:
    """A valid request gets OpenAI's chat.completion with deterministic text and usage."""

    def test_body_shape(self, openai: Post) -> None:
        """id, object, created, snapshot model, one choice and the usage details are all there."""
        response = openai()
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["id"].startswith("chatcmpl-")
        assert body["object"] == "chat.completion"
        assert abs(body["created"] - time.time()) < 60
        assert body["model"] == "gpt-4o-mini-2024-07-18"
        choice = body["choices"][0]
        assert choice["index"] == 0
        assert choice["message"] == {
            "role": "assistant",
            "content": "Emulated openai reply to 4 prompt tokens.",
            "refusal": None,
            "annotations": [],
        }
        assert choice["logprobs"] is None
        assert choice["finish_reason"] == "stop"
        assert body["system_fingerprint"].startswith("fp_")

    def test_usage_is_predictable(self, openai: Post) -> None:
        """prompt = token rule over all messages; completion = the reply; details are zeros."""
        usage = openai(text="Hello, world!").json()["usage"]
        reply = reply_text("openai", 4)
        assert usage == {
            "prompt_tokens": 4,
            "completion_tokens": count_tokens(reply),
            "total_tokens": 4 + count_tokens(reply),
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def test_every_message_and_content_part_counts(self, openai: Post) -> None:
        """System, developer, user and assistant text, and text parts, all count toward prompt."""
        body = {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "developer", "content": "No emojis"},
                {"role": "user", "content": [{"type": "text", "text": "Hi there"}]},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Sum: 1+1?"},
            ],
        }
        response = openai(body)
        assert response.json()["usage"]["prompt_tokens"] == 3 + 2 + 2 + 2 + 6
        assert response.json()["model"] == "gpt-4o-2024-08-06"

    def test_configure_sets_cached_and_reasoning_tokens(
        self, emulator: Emulator, openai: Post
    ) -> None:
        """Reasoning tokens join completion_tokens; cached tokens are clamped to the prompt."""
        emulator.configure("openai", thoughts_tokens=30, cached_tokens=1000)
        usage = openai(text="Hello, world!").json()["usage"]
        visible = count_tokens(reply_text("openai", 4))
        assert usage["completion_tokens"] == visible + 30
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 30
        assert usage["prompt_tokens_details"]["cached_tokens"] == 4
        assert usage["total_tokens"] == 4 + visible + 30

    @pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
    def test_output_limit_truncates_with_length(self, openai: Post, field: str) -> None:
        """A reply over the limit is cut to that many tokens with finish_reason length."""
        body = openai(**{field: 3}).json()
        assert body["choices"][0]["message"]["content"] == "Emulated openai reply"
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] == 3

    def test_json_mode_replies_with_json(self, openai: Post) -> None:
        """json_object mode, with JSON named in a message, answers a JSON document."""
        body = openai(text="Status as JSON", response_format={"type": "json_object"}).json()
        content = body["choices"][0]["message"]["content"]
        assert json.loads(content) == {"emulated": True, "prompt_tokens": 3}

    def test_reasoning_model_accepts_max_completion_tokens(self, openai: Post) -> None:
        """o-series and gpt-5 models take max_completion_tokens."""
        body = {"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}]}
        assert openai({**body, "max_completion_tokens": 50}).status_code == 200

    def test_headers(self, openai: Post) -> None:
        """x-request-id and the six x-ratelimit-* headers come with every answer."""
        headers = openai(text="one two three").headers
        assert headers["x-request-id"].startswith("req_")
        assert set(headers) >= RATE_LIMIT_HEADERS
        assert headers["x-ratelimit-remaining-requests"] == "4999"
        remaining = int(headers["x-ratelimit-remaining-tokens"])
        assert remaining == int(headers["x-ratelimit-limit-tokens"]) - 3
        assert headers["openai-version"] == "2020-10-01"
        assert "retry-after" not in headers

    def test_ids_are_unique(self, openai: Post) -> None:
        """Every response carries its own id and x-request-id."""
        responses = [openai() for _ in range(10)]
        assert len({r.json()["id"] for r in responses}) == 10
        assert len({r.headers["x-request-id"] for r in responses}) == 10


class TestOpenAIAuth:
    """The Bearer key is checked the way OpenAI checks it."""

    def test_missing_key_is_401_with_null_code(self, openai: Post) -> None:
        """No Authorization header: 401, code null, the "didn't provide an API key" text."""
        response = openai(key=None)
        assert response.status_code == 401
        error = _openai_error(response)
        assert error["code"] is None
        assert error["type"] == "invalid_request_error"
        assert str(error["message"]).startswith("You didn't provide an API key.")

    def test_wrong_key_is_401_invalid_api_key_masked(self, openai: Post) -> None:
        """A wrong key: 401 invalid_api_key whose message shows the key masked."""
        response = openai(key="sk-wrong-key-123456789")
        assert response.status_code == 401
        error = _openai_error(response)
        assert error["code"] == "invalid_api_key"
        message = str(error["message"])
        assert message.startswith("Incorrect API key provided: sk-***")
        assert "6789." in message
        assert "sk-wrong-key-123456789" not in message

    def test_other_schemes_count_as_no_key(self, openai: Post, emulator: Emulator) -> None:
        """A key sent without the Bearer scheme is not a key."""
        response = openai(key=None, headers={"authorization": emulator.key_for("openai")})
        assert response.status_code == 401
        assert _openai_error(response)["code"] is None

    def test_the_gemini_key_is_not_the_openai_key(self, openai: Post, emulator: Emulator) -> None:
        """Each provider accepts only its own key."""
        assert openai(key=emulator.gemini_key).status_code == 401


class TestOpenAIValidation:
    """Bad requests get OpenAI's 400/404/405 answers."""

    @pytest.mark.parametrize(
        ("body", "param", "code", "start"),
        [
            (b"{not json", None, None, "We could not parse the JSON body of your request."),
            (
                {"model": "gpt-4o-mini", "messages": [], "tempreature": 1},
                None,
                None,
                "Unrecognized request argument supplied: tempreature",
            ),
            ({"messages": [{"role": "user", "content": "x"}]}, None, None, "you must provide"),
            ({"model": "gpt-4o-mini"}, "messages", "missing_required_parameter", "Missing"),
            ({"model": "gpt-4o-mini", "messages": []}, "messages", "empty_array", "Invalid"),
            ({"model": "gpt-4o-mini", "messages": "hi"}, "messages", "invalid_type", "Invalid"),
            (
                {"model": "gpt-4o-mini", "messages": [{"role": "model", "content": "x"}]},
                "messages[0].role",
                "invalid_value",
                "Invalid value: 'model'. Supported values are: 'system', 'assistant',",
            ),
            (
                {"model": "gpt-4o-mini", "messages": [{"role": "user"}]},
                "messages[0].content",
                "missing_required_parameter",
                "Missing required parameter: 'messages[0].content'.",
            ),
        ],
    )
    def test_body_problems(
        self, openai: Post, body: object, param: str | None, code: str | None, start: str
    ) -> None:
        """Each malformed body is a 400 naming the parameter and code OpenAI would."""
        response = openai(body)
        assert response.status_code == 400
        error = _openai_error(response)
        assert (error["param"], error["code"]) == (param, code)
        assert str(error["message"]).startswith(start)

    @pytest.mark.parametrize(
        ("fields", "param", "code", "message"),
        [
            (
                {"temperature": 3},
                "temperature",
                "decimal_above_max_value",
                "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                "but got 3 instead.",
            ),
            (
                {"max_tokens": 0},
                "max_tokens",
                "integer_below_min_value",
                "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, "
                "but got 0 instead.",
            ),
            (
                {"max_completion_tokens": "5"},
                "max_completion_tokens",
                "invalid_type",
                "Invalid type for 'max_completion_tokens': expected an integer, but got a "
                "string instead.",
            ),
            (
                {"response_format": {"type": "xml"}},
                "response_format.type",
                "invalid_value",
                "Invalid value: 'xml'. Supported values are: 'json_object', 'json_schema', "
                "and 'text'.",
            ),
        ],
    )
    def test_parameter_problems(
        self, openai: Post, fields: dict[str, object], param: str, code: str, message: str
    ) -> None:
        """Out-of-range or mistyped parameters are 400 with OpenAI's exact wording."""
        response = openai(**fields)
        assert response.status_code == 400
        error = _openai_error(response)
        assert (error["param"], error["code"], error["message"]) == (param, code, message)

    def test_unknown_model_is_404_model_not_found(self, openai: Post) -> None:
        """A model id OpenAI does not serve is 404 model_not_found."""
        response = openai({"model": "llama-3", "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 404
        error = _openai_error(response)
        assert error["code"] == "model_not_found"
        assert error["message"] == (
            "The model `llama-3` does not exist or you do not have access to it."
        )

    def test_reasoning_model_refuses_max_tokens(self, openai: Post) -> None:
        """A reasoning model answers max_tokens with 400 unsupported_parameter."""
        body = {"model": "o3", "messages": [{"role": "user", "content": "x"}], "max_tokens": 9}
        response = openai(body)
        assert response.status_code == 400
        error = _openai_error(response)
        assert (error["param"], error["code"]) == ("max_tokens", "unsupported_parameter")

    def test_json_mode_needs_the_word_json(self, openai: Post) -> None:
        """json_object mode without "json" in any message is refused, as OpenAI does."""
        response = openai(text="Status please", response_format={"type": "json_object"})
        assert response.status_code == 400
        assert "must contain the word 'json'" in str(_openai_error(response)["message"])

    def test_unknown_url_and_wrong_method(self, http: httpx.Client, emulator: Emulator) -> None:
        """Other /v1/ URLs are 404 "Invalid URL"; GET on chat completions is 405."""
        auth = {"authorization": f"Bearer {emulator.key_for('openai')}"}
        response = http.post("/v1/embeddings", json={}, headers=auth)
        assert response.status_code == 404
        assert _openai_error(response)["message"] == "Invalid URL (POST /v1/embeddings)"
        response = http.get(OPENAI_CHAT, headers=auth)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert _openai_error(response)["message"] == f"Invalid method for URL (GET {OPENAI_CHAT})"


class TestOpenAIFaults:
    """Every FaultKind in OpenAI's shape."""

    def test_bad_key_rejects_the_right_key(self, emulator: Emulator, openai: Post) -> None:
        """bad_key answers 401 invalid_api_key even to the correct key, then recovers."""
        emulator.inject("openai", FaultKind.BAD_KEY, times=1)
        response = openai()
        assert response.status_code == 401
        assert _openai_error(response)["code"] == "invalid_api_key"
        assert emulator.key_for("openai") not in response.text
        assert openai().status_code == 200

    @pytest.mark.parametrize(
        ("seconds", "after", "after_ms"), [(2.0, "2", "2000"), (1.5, "2", "1500")]
    )
    def test_rate_limit_sends_every_retry_hint(
        self, emulator: Emulator, openai: Post, seconds: float, after: str, after_ms: str
    ) -> None:
        """rate_limit: 429 rate_limit_exceeded with retry-after(-ms) and an exhausted budget."""
        emulator.inject("openai", "rate_limit", times=1, retry_after_s=seconds)
        response = openai()
        assert response.status_code == 429
        error = _openai_error(response)
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        assert f"Please try again in {duration(seconds)}." in str(error["message"])
        assert response.headers["retry-after"] == after
        assert response.headers["retry-after-ms"] == after_ms
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        assert response.headers["x-ratelimit-reset-requests"] == duration(seconds)

    def test_quota_daily_is_insufficient_quota_without_hint(
        self, emulator: Emulator, openai: Post
    ) -> None:
        """quota_daily: 429 insufficient_quota, and no retry-after."""
        emulator.inject("openai", "quota_daily")
        response = openai()
        assert response.status_code == 429
        error = _openai_error(response)
        assert error["type"] == error["code"] == "insufficient_quota"
        assert "retry-after" not in response.headers

    @pytest.mark.parametrize(
        ("kind", "status", "message"),
        [
            ("server_error", 500, "The server had an error while processing your request."),
            ("unavailable", 503, "The engine is currently overloaded, please try again later"),
        ],
    )
    def test_server_faults(
        self, emulator: Emulator, openai: Post, kind: str, status: int, message: str
    ) -> None:
        """server_error is 500 server_error; unavailable is 503 "engine overloaded"."""
        emulator.inject("openai", kind)
        response = openai()
        assert response.status_code == status
        error = _openai_error(response)
        assert error["type"] == "server_error"
        assert str(error["message"]).startswith(message)

    def test_error_faults_win_over_a_missing_key(self, emulator: Emulator, openai: Post) -> None:
        """An active fault answers before the key is checked."""
        emulator.inject("openai", "unavailable", times=1)
        assert openai(key=None).status_code == 503
        assert openai(key=None).status_code == 401

    def test_malformed_json_keeps_status_and_headers(
        self, emulator: Emulator, openai: Post
    ) -> None:
        """malformed_json is a complete 200, headers and all, whose body does not parse."""
        emulator.inject("openai", "malformed_json", times=1)
        response = openai()
        assert response.status_code == 200
        assert response.headers["x-request-id"].startswith("req_")
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)

    def test_truncated_stops_short(self, emulator: Emulator, http: httpx.Client) -> None:
        """truncated sends fewer bytes than Content-Length promises, then closes."""
        emulator.inject("openai", "truncated", times=1)
        with http.stream(
            "POST",
            OPENAI_CHAT,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {emulator.key_for('openai')}"},
        ) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                response.read()

    def test_omit_usage(self, emulator: Emulator, openai: Post) -> None:
        """omit_usage answers a normal 200 without the usage block."""
        emulator.inject("openai", "omit_usage", times=1)
        body = openai().json()
        assert "usage" not in body
        assert body["choices"][0]["finish_reason"] == "stop"
        assert "usage" in openai().json()

    def test_wire_faults(self, emulator: Emulator, openai: Post) -> None:
        """slow delays, timeout never answers and reset drops the connection, for OpenAI too."""
        emulator.inject("openai", "slow", times=1, delay_s=0.2)
        started = time.monotonic()
        assert openai().status_code == 200
        assert time.monotonic() - started >= 0.2
        emulator.inject("openai", "timeout", times=1)
        with pytest.raises(httpx.ReadTimeout):
            openai(timeout=0.3)
        emulator.inject("openai", "reset", times=1)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            openai()
        assert openai().status_code == 200
        assert emulator.request_count("openai") == 4

    def test_faults_stay_with_their_provider(
        self, emulator: Emulator, openai: Post, glm: Post
    ) -> None:
        """A fault injected for openai does not touch glm, and the reverse."""
        emulator.inject("openai", "server_error")
        emulator.inject("glm", "rate_limit")
        assert (openai().status_code, glm().status_code) == (500, 429)
        emulator.clear_faults("openai")
        assert (openai().status_code, glm().status_code) == (200, 429)


class TestGLMSuccess:
    """A valid request gets GLM's body: no object field, usage with prompt_tokens_details."""

    def test_body_shape(self, glm: Post) -> None:
        """choices, created, id (= request_id), model and usage, with no OpenAI-only fields."""
        response = glm()
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert list(body) == ["choices", "created", "id", "model", "request_id", "usage"]
        assert body["id"] == body["request_id"]
        assert len(body["id"]) == 30
        assert body["model"] == "glm-4.5"
        assert body["choices"] == [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {
                    "content": "Emulated glm reply to 4 prompt tokens.",
                    "role": "assistant",
                },
            }
        ]
        assert not {"x-request-id", "x-ratelimit-limit-requests"} & set(response.headers)

    def test_usage_is_predictable(self, glm: Post) -> None:
        """prompt and completion follow the token rule; cached_tokens 0 is still reported."""
        usage = glm(text="Hello, world!").json()["usage"]
        visible = count_tokens(reply_text("glm", 4))
        assert usage == {
            "completion_tokens": visible,
            "prompt_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 0},
            "total_tokens": 4 + visible,
        }

    def test_configure_adds_reasoning_and_cache(self, emulator: Emulator, glm: Post) -> None:
        """Thinking adds reasoning_content and completion_tokens_details; cache is clamped."""
        emulator.configure("glm", thoughts_tokens=12, cached_tokens=3)
        body = glm(text="one two three four").json()
        visible = count_tokens(reply_text("glm", 4))
        assert body["choices"][0]["message"]["reasoning_content"] == "Emulated reasoning."
        assert body["usage"]["completion_tokens"] == visible + 12
        assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 12}
        assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 3}
        emulator.configure("glm", cached_tokens=99)
        assert glm(text="a b").json()["usage"]["prompt_tokens_details"] == {"cached_tokens": 2}

    def test_request_id_is_echoed(self, glm: Post) -> None:
        """A client-chosen request_id comes back; the id stays the platform's own."""
        body = glm(request_id="my-req-42").json()
        assert body["request_id"] == "my-req-42"
        assert body["id"] != "my-req-42"

    def test_max_tokens_truncates_with_length(self, glm: Post) -> None:
        """max_tokens cuts the reply with finish_reason length."""
        choice = glm(max_tokens=2).json()["choices"][0]
        assert (choice["message"]["content"], choice["finish_reason"]) == ("Emulated glm", "length")

    def test_json_mode_and_unknown_fields(self, glm: Post) -> None:
        """json_object mode answers JSON (no "json" word needed); GLM extras are accepted."""
        body = glm(
            text="Status",
            response_format={"type": "json_object"},
            thinking={"type": "disabled"},
            do_sample=False,
        ).json()
        assert json.loads(body["choices"][0]["message"]["content"])["emulated"] is True

    def test_english_or_chinese_messages(self, glm: Post) -> None:
        """Errors are Chinese by default (BigModel) and English with Accept-Language: en."""
        chinese = _glm_error(glm({"model": "glm-x-9", "messages": []}, key="nope"))
        english = _glm_error(glm(key="nope", headers={"accept-language": "en-US,en"}))
        assert chinese["message"] == "Authorization Token非法，请确认Authorization Token正确传递。"
        assert english["message"] == (
            "Authorization Token is invalid, please make sure it is passed correctly."
        )


class TestGLMAuth:
    """The key, or a legacy JWT signed with it, as Bearer."""

    def test_missing_key_is_401_1001(self, glm: Post) -> None:
        """No Authorization header is 401 with business code 1001."""
        response = glm(key=None)
        assert response.status_code == 401
        assert _glm_error(response)["code"] == "1001"

    def test_wrong_key_is_401_1002(self, glm: Post) -> None:
        """A wrong key is 401 with business code 1002."""
        response = glm(key="someid.somesecret")
        assert response.status_code == 401
        assert _glm_error(response)["code"] == "1002"

    def test_jwt_signed_with_the_key(self) -> None:
        """With an {id}.{secret} key, a fresh JWT passes; expired, seconds-exp or forged fail."""
        key = "kid123.s3cret"
        body = {"model": "glm-4-flash", "messages": [{"role": "user", "content": "hi"}]}
        now_ms = int(time.time() * 1000)
        with Emulator(keys={"glm": key}) as emu, httpx.Client(base_url=emu.base_url) as client:

            def code_for(token: str) -> tuple[int, object]:
                response = client.post(
                    GLM_CHAT, json=body, headers={"authorization": f"Bearer {token}"}
                )
                code = response.json()["error"]["code"] if response.status_code != 200 else None
                return response.status_code, code

            assert code_for(key) == (200, None)
            assert code_for(sign_token(key)) == (200, None)
            assert code_for(sign_token(key, now_ms=now_ms - 600_000)) == (401, "1003")
            assert code_for(sign_token("kid123.other-secret")) == (401, "1002")
            assert code_for(sign_token("other-id.s3cret")) == (401, "1002")

    def test_jwt_exp_is_milliseconds(self) -> None:
        """An exp in seconds (the usual JWT mistake) reads as long expired."""
        key = "kid.secret"
        token = sign_token(key, now_ms=1_764_000_000_000)
        assert refusal_code(token, key, now_ms=1_764_000_000_000) is None
        assert refusal_code(token, key, now_ms=1_764_000_000_000 + 211_000) == "1003"
        assert refusal_code("a.b.c", key) == "1002"
        assert refusal_code("not-a-jwt", key) == "1002"


class TestGLMValidation:
    """Bad GLM requests get business codes 1210, 1211, 1213 and 1214."""

    @pytest.mark.parametrize(
        ("body", "code", "message"),
        [
            (b"{oops", "1210", "API 调用参数有误，请检查文档。"),
            ({"messages": [{"role": "user", "content": "x"}]}, "1213", "未正常接收到model参数。"),
            ({"model": "glm-4.5"}, "1213", "未正常接收到messages参数。"),
            ({"model": "glm-4.5", "messages": []}, "1214", "messages参数非法。请检查文档。"),
            (
                {"model": "glm-4.5", "messages": [{"role": "developer", "content": "x"}]},
                "1214",
                "messages[0].role参数非法。请检查文档。",
            ),
            (
                {
                    "model": "glm-4.5",
                    "messages": [{"role": "user", "content": "x"}],
                    "temperature": 1.5,
                },
                "1214",
                "temperature参数非法。请检查文档。",
            ),
            (
                {
                    "model": "glm-4.5",
                    "messages": [{"role": "user", "content": "x"}],
                    "max_tokens": 0,
                },
                "1214",
                "max_tokens参数非法。请检查文档。",
            ),
        ],
    )
    def test_body_problems(self, glm: Post, body: object, code: str, message: str) -> None:
        """Each malformed body is a 400 with the business code the platform uses."""
        response = glm(body)
        assert response.status_code == 400
        assert _glm_error(response) == {"code": code, "message": message}

    def test_unknown_model_is_400_1211(self, glm: Post) -> None:
        """An unknown model code is 400 / 1211 (not 404)."""
        response = glm(
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
            headers={"accept-language": "en"},
        )
        assert response.status_code == 400
        assert _glm_error(response) == {
            "code": "1211",
            "message": "Unknown Model, please check the model code.",
        }

    def test_unknown_url_and_wrong_method(self, http: httpx.Client) -> None:
        """Other /api/paas/v4/ URLs are 404 / 1222; GET on chat completions is 405."""
        response = http.post("/api/paas/v4/embeddingz", json={})
        assert response.status_code == 404
        assert _glm_error(response) == {
            "code": "1222",
            "message": "API /api/paas/v4/embeddingz 不存在",
        }
        response = http.get(GLM_CHAT)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


class TestGLMFaults:
    """Every FaultKind in GLM's shape: business codes, 429 without any retry header."""

    @pytest.mark.parametrize(
        ("kind", "status", "code", "message"),
        [
            ("bad_key", 401, "1002", "Authorization Token is invalid"),
            ("rate_limit", 429, "1302", "Rate limit reached for requests"),
            ("quota_daily", 429, "1113", "Insufficient balance or no resource package."),
            ("server_error", 500, "500", "Internal error"),
            ("unavailable", 429, "1305", "The service may be temporarily overloaded"),
        ],
    )
    def test_error_faults(
        self, emulator: Emulator, glm: Post, kind: str, status: int, code: str, message: str
    ) -> None:
        """Each error fault answers its business code; none carries Retry-After."""
        emulator.inject("glm", kind, times=1, retry_after_s=3.0)
        response = glm(headers={"accept-language": "en-US,en"})
        assert response.status_code == status
        error = _glm_error(response)
        assert error["code"] == code
        assert str(error["message"]).startswith(message)
        assert glm().status_code == 200

    def test_chinese_fault_bodies(self, emulator: Emulator, glm: Post) -> None:
        """Without Accept-Language the 1113 and 1302 bodies are BigModel's Chinese ones."""
        emulator.inject("glm", "quota_daily", times=1)
        emulator.inject("glm", "rate_limit", times=1)
        assert _glm_error(glm())["message"] == "余额不足或无可用资源包,请充值。"
        assert _glm_error(glm())["message"] == "您的账户已达到速率限制，请您控制请求频率"

    def test_broken_bodies_and_omit_usage(self, emulator: Emulator, glm: Post) -> None:
        """malformed_json breaks the 200 body; omit_usage leaves usage out."""
        emulator.inject("glm", "malformed_json", times=1)
        emulator.inject("glm", "omit_usage", times=1)
        with pytest.raises(json.JSONDecodeError):
            json.loads(glm().content)
        body = glm().json()
        assert "usage" not in body
        assert body["choices"][0]["finish_reason"] == "stop"

    def test_truncated_stops_short(self, emulator: Emulator, http: httpx.Client) -> None:
        """truncated sends fewer bytes than Content-Length promises, then closes."""
        emulator.inject("glm", "truncated", times=1)
        with http.stream(
            "POST",
            GLM_CHAT,
            json={"model": "glm-4.5", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {emulator.key_for('glm')}"},
        ) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                response.read()

    def test_wire_faults(self, emulator: Emulator, glm: Post) -> None:
        """timeout never answers and reset drops the connection, for GLM too."""
        emulator.inject("glm", "timeout", times=1)
        with pytest.raises(httpx.ReadTimeout):
            glm(timeout=0.3)
        emulator.inject("glm", "reset", times=1)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            glm()
        assert glm().status_code == 200
