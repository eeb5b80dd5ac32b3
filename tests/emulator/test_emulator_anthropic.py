"""The emulated Anthropic Messages API over real HTTP: bodies, usage, auth, validation, faults."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from nexus_llm.emulator import Emulator
from nexus_llm.emulator._gemini import count_tokens

MODEL = "claude-haiku-4-5"
PATH = "/v1/messages"
VERSION = "2023-06-01"
REPLY_4 = "Emulated anthropic reply to 4 prompt tokens."  # 8 tokens
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

Post = Callable[..., httpx.Response]


@pytest.fixture
def post(client: httpx.Client, emulator: Emulator) -> Post:
    """Post a Messages body with the right key and version unless told otherwise."""

    def send(
        body: object = None,
        *,
        text: str = "Hello, world!",
        key: str | None = "right",
        version: str | None = VERSION,
        timeout: float = 10.0,
    ) -> httpx.Response:
        if body is None:
            body = {
                "model": MODEL,
                "max_tokens": 256,
                "messages": [{"role": "user", "content": text}],
            }
        headers: dict[str, str] = {}
        if key is not None:
            headers["x-api-key"] = emulator.key_for("anthropic") if key == "right" else key
        if version is not None:
            headers["anthropic-version"] = version
        return client.post(PATH, json=body, headers=headers, timeout=timeout)

    return send


def _error(response: httpx.Response) -> dict[str, object]:
    """The error object of an Anthropic error envelope, after checking the envelope itself."""
    body = response.json()
    assert body["type"] == "error"
    assert body["request_id"] == response.headers["request-id"]
    assert response.headers["content-type"] == "application/json"
    error: dict[str, object] = body["error"]
    return error


def _usage(response: httpx.Response) -> dict[str, object]:
    usage: dict[str, object] = response.json()["usage"]
    return usage


def _body(**fields: object) -> dict[str, object]:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello, world!"}],
        **fields,
    }


class TestSuccess:
    """A valid request gets Anthropic's 200 body with deterministic text and usage."""

    def test_body_has_the_messages_shape(self, post: Post) -> None:
        """id, type, role, model, one text block, stop_reason and request-id are all there."""
        response = post()
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert re.fullmatch(r"req_011C\w{20}", response.headers["request-id"])
        assert response.headers["anthropic-organization-id"]
        body = response.json()
        assert re.fullmatch(r"msg_01\w{22}", body["id"])
        assert (body["type"], body["role"], body["model"]) == ("message", "assistant", MODEL)
        assert body["content"] == [{"type": "text", "text": REPLY_4}]
        assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)

    def test_usage_is_predictable(self, post: Post) -> None:
        """Prompt and reply counts follow the Gemini emulator's token rule; cache fields are 0."""
        assert count_tokens(REPLY_4) == 8
        assert _usage(post(text="Hello, world!")) == {
            "input_tokens": 4,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 8,
            "service_tier": "standard",
        }

    def test_system_turns_and_blocks_count_toward_the_prompt(self, post: Post) -> None:
        """System (string or blocks) and every text of every turn make the prompt."""
        body = _body(
            system=[{"type": "text", "text": "You are terse."}],
            messages=[
                {"role": "user", "content": "Hi there"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
                {"role": "user", "content": [{"type": "text", "text": "Sum: 1+1?"}]},
            ],
        )
        response = post(body)
        assert _usage(response)["input_tokens"] == 4 + 2 + 2 + 6
        assert (
            response.json()["content"][0]["text"] == "Emulated anthropic reply to 14 prompt tokens."
        )

    def test_cached_tokens_knob_is_cache_read(self, emulator: Emulator, post: Post) -> None:
        """cached_tokens becomes cache_read_input_tokens, taken out of input_tokens."""
        emulator.configure("anthropic", cached_tokens=3)
        usage = _usage(post(text="Hello, world!"))
        assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (1, 3)
        assert usage["cache_creation_input_tokens"] == 0

    def test_cached_tokens_are_clamped_to_the_prompt(self, emulator: Emulator, post: Post) -> None:
        """Cache reads never exceed the prompt, and input_tokens never goes negative."""
        emulator.configure("anthropic", cached_tokens=1000)
        usage = _usage(post(text="Hello, world!"))
        assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (0, 4)

    def test_cache_control_breakpoint_is_a_cache_write(self, post: Post) -> None:
        """The prefix up to the last cache_control block is reported as cache creation (5 min)."""
        body = _body(
            system=[
                {
                    "type": "text",
                    "text": "Long shared manual.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            messages=[{"role": "user", "content": "Hello, world!"}],
        )
        usage = _usage(post(body))
        assert usage["cache_creation_input_tokens"] == 4
        assert usage["cache_creation"] == {
            "ephemeral_5m_input_tokens": 4,
            "ephemeral_1h_input_tokens": 0,
        }
        assert usage["input_tokens"] == 4

    def test_cache_write_with_one_hour_ttl_and_a_read(self, emulator: Emulator, post: Post) -> None:
        """A 1 h breakpoint books the write as 1 h; a cache read covers the start of the prefix."""
        emulator.configure("anthropic", cached_tokens=2)
        marked = {"type": "ephemeral", "ttl": "1h"}
        body = _body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "one two three", "cache_control": marked},
                        {"type": "text", "text": "four five"},
                    ],
                }
            ]
        )
        usage = _usage(post(body))
        assert usage["cache_read_input_tokens"] == 2
        assert usage["cache_creation_input_tokens"] == 1
        assert usage["cache_creation"] == {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 1,
        }
        assert usage["input_tokens"] == 2

    def test_thoughts_knob_adds_a_thinking_block_and_output(
        self, emulator: Emulator, post: Post
    ) -> None:
        """thoughts_tokens adds a thinking block first and counts in output_tokens."""
        emulator.configure("anthropic", thoughts_tokens=30)
        body = post().json()
        assert [block["type"] for block in body["content"]] == ["thinking", "text"]
        assert body["content"][0]["signature"]
        assert body["usage"]["output_tokens"] == 8 + 30
        assert body["usage"]["output_tokens_details"] == {"thinking_tokens": 30}

    def test_max_tokens_cuts_the_reply(self, post: Post) -> None:
        """A reply over max_tokens is cut to that many tokens with stop_reason max_tokens."""
        body = post(_body(max_tokens=3)).json()
        assert body["content"] == [{"type": "text", "text": "Emulated anthropic reply"}]
        assert body["stop_reason"] == "max_tokens"
        assert body["usage"]["output_tokens"] == 3

    def test_thinking_can_spend_all_of_max_tokens(self, emulator: Emulator, post: Post) -> None:
        """When thinking uses up max_tokens there is no text block at all."""
        emulator.configure("anthropic", thoughts_tokens=50)
        body = post(_body(max_tokens=20)).json()
        assert [block["type"] for block in body["content"]] == ["thinking"]
        assert body["stop_reason"] == "max_tokens"
        assert body["usage"]["output_tokens"] == 20

    def test_rate_limit_headers_on_success(self, post: Post) -> None:
        """Every answer carries the anthropic-ratelimit-* families with RFC 3339 resets."""
        headers = post().headers
        for bucket in ("requests", "tokens", "input-tokens", "output-tokens"):
            assert int(headers[f"anthropic-ratelimit-{bucket}-limit"]) > 0
            assert int(headers[f"anthropic-ratelimit-{bucket}-remaining"]) >= 0
            assert _RFC3339.fullmatch(headers[f"anthropic-ratelimit-{bucket}-reset"])

    @pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
    def test_both_versions_are_accepted(self, post: Post, version: str) -> None:
        """Both anthropic-version values of the reference are served."""
        assert post(version=version).status_code == 200

    def test_ids_are_unique(self, post: Post) -> None:
        """Every response has its own message id and request id."""
        responses = [post() for _ in range(10)]
        assert len({r.json()["id"] for r in responses}) == 10
        assert len({r.headers["request-id"] for r in responses}) == 10


class TestAuth:
    """x-api-key and anthropic-version are checked like the live API."""

    def test_missing_key_is_401(self, post: Post) -> None:
        """No x-api-key is 401 authentication_error "x-api-key header is required"."""
        response = post(key=None)
        assert response.status_code == 401
        assert _error(response) == {
            "type": "authentication_error",
            "message": "x-api-key header is required",
        }
        assert response.headers["x-should-retry"] == "false"

    def test_wrong_key_is_401(self, post: Post) -> None:
        """A wrong key is 401 authentication_error "invalid x-api-key"."""
        response = post(key="sk-ant-wrong")
        assert response.status_code == 401
        assert _error(response) == {"type": "authentication_error", "message": "invalid x-api-key"}

    def test_missing_version_is_400(self, post: Post) -> None:
        """No anthropic-version header is a 400 invalid_request_error saying it is required."""
        response = post(version=None)
        assert response.status_code == 400
        assert _error(response) == {
            "type": "invalid_request_error",
            "message": "anthropic-version: header is required",
        }

    def test_unknown_version_is_400(self, post: Post) -> None:
        """An anthropic-version the API does not know is 400 naming the valid ones."""
        response = post(version="2099-01-01")
        assert response.status_code == 400
        assert "2023-06-01" in str(_error(response)["message"])

    def test_key_is_checked_before_version_and_body(self, post: Post) -> None:
        """Without key, version or body, the answer is still the 401."""
        assert post({}, key=None, version=None).status_code == 401

    def test_custom_key_is_honoured(self) -> None:
        """The key given to the constructor is the only one accepted."""
        with (
            Emulator(keys={"anthropic": "sekrit"}) as emu,
            httpx.Client(base_url=emu.base_url_for("anthropic")) as http,
        ):
            assert emu.key_for("anthropic") == "sekrit"
            codes = [
                http.post(
                    PATH, json=_body(), headers={"x-api-key": key, "anthropic-version": VERSION}
                ).status_code
                for key in ("sekrit", "emulator-anthropic-key")
            ]
        assert codes == [200, 401]


class TestRouting:
    """Paths, methods, models and streaming."""

    def test_unknown_model_is_404(self, post: Post) -> None:
        """A model id not starting with claude- is 404 not_found_error "model: <id>"."""
        response = post(_body(model="gpt-4o"))
        assert response.status_code == 404
        assert _error(response) == {"type": "not_found_error", "message": "model: gpt-4o"}

    def test_other_paths_under_messages_are_404(
        self, client: httpx.Client, emulator: Emulator
    ) -> None:
        """Endpoints under /v1/messages that are not emulated answer 404 in the envelope."""
        response = client.post(f"{PATH}/batches", json={})
        assert response.status_code == 404
        assert _error(response)["type"] == "not_found_error"
        assert emulator.request_count("anthropic") == 1

    def test_wrong_method_is_405(self, client: httpx.Client) -> None:
        """GET /v1/messages is 405 in the envelope with an Allow header."""
        response = client.get(PATH)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        _error(response)


class TestBodyValidation:
    """Bad bodies get 400 invalid_request_error with Anthropic's field-path messages."""

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (
                {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                "max_tokens: Field required",
            ),
            (_body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
            (_body(max_tokens="9"), "max_tokens: Input should be a valid integer"),
            ({"max_tokens": 5, "messages": []}, "model: Field required"),
            ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
            (_body(messages=[]), "messages: at least one message is required"),
            (
                _body(messages=[{"role": "system", "content": "x"}]),
                "messages.0.role: Input should be 'user' or 'assistant'",
            ),
            (
                _body(
                    messages=[{"role": "user", "content": "a"}, {"role": "model", "content": "b"}]
                ),
                "messages.1.role: Input should be 'user' or 'assistant'",
            ),
            (_body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
            (
                _body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
                "messages: text content blocks must be non-empty",
            ),
            (
                _body(system=[{"type": "text", "text": ""}]),
                "system: text content blocks must be non-empty",
            ),
            (_body(system=42), "system: Input should be a valid string or a list of blocks"),
            (_body(temperature=1.5), "temperature: range: 0..1"),
            (
                _body(response_format={"type": "json_object"}),
                "response_format: Extra inputs are not permitted",
            ),
            ([1, 2], "Input should be a valid dictionary"),
        ],
    )
    def test_bad_bodies_are_400(self, post: Post, body: object, message: str) -> None:
        """Each mistake is named by its field path."""
        response = post(body)
        assert response.status_code == 400
        assert _error(response) == {"type": "invalid_request_error", "message": message}

    def test_invalid_json_is_400(self, client: httpx.Client, emulator: Emulator) -> None:
        """A body that is not JSON is a 400 invalid_request_error."""
        response = client.post(
            PATH,
            content=b"{not json",
            headers={"x-api-key": emulator.key_for("anthropic"), "anthropic-version": VERSION},
        )
        assert response.status_code == 400
        assert _error(response)["type"] == "invalid_request_error"

    def test_new_version_refuses_sampling_parameters(self, post: Post) -> None:
        """With anthropic-version 2026-10-21, temperature is a 400; with 2023-06-01 it is fine."""
        body = _body(temperature=0.2)
        refused = post(body, version="2026-10-21")
        assert refused.status_code == 400
        assert str(_error(refused)["message"]).startswith("temperature: ")
        assert post(body, version="2023-06-01").status_code == 200

    def test_prefill_and_extra_known_fields_are_accepted(self, post: Post) -> None:
        """A trailing assistant turn (prefill), metadata and stop_sequences are valid."""
        body = _body(
            messages=[
                {"role": "user", "content": "Give JSON"},
                {"role": "assistant", "content": "{"},
            ],
            metadata={"user_id": "u-1"},
            stop_sequences=["END"],
            top_p=0.9,
        )
        assert post(body).status_code == 200


class TestFaults:
    """Each FaultKind in Anthropic's real shapes."""

    def test_bad_key_rejects_the_right_key(self, emulator: Emulator, post: Post) -> None:
        """bad_key answers 401 invalid x-api-key even to the correct key, once."""
        emulator.inject("anthropic", "bad_key", times=1)
        response = post()
        assert response.status_code == 401
        assert _error(response)["message"] == "invalid x-api-key"
        assert post().status_code == 200

    @pytest.mark.parametrize(("retry_after_s", "header"), [(2.0, "2"), (1.5, "2"), (30, "30")])
    def test_rate_limit_has_retry_after_and_rate_limit_headers(
        self, emulator: Emulator, post: Post, retry_after_s: float, header: str
    ) -> None:
        """rate_limit is 429 rate_limit_error with whole-second retry-after and an empty bucket."""
        emulator.inject("anthropic", "rate_limit", times=1, retry_after_s=retry_after_s)
        before = datetime.now(UTC).replace(microsecond=0)
        response = post()
        assert response.status_code == 429
        error = _error(response)
        assert error["type"] == "rate_limit_error"
        assert str(error["message"]).startswith("This request would exceed the rate limit")
        headers = response.headers
        assert headers["retry-after"] == header
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        reset = datetime.strptime(
            headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=UTC)
        assert (reset - before).total_seconds() >= int(header)
        for bucket in ("tokens", "input-tokens", "output-tokens"):
            assert f"anthropic-ratelimit-{bucket}-limit" in headers

    def test_quota_daily_is_the_spend_cap(self, emulator: Emulator, post: Post) -> None:
        """quota_daily is Anthropic's monthly spend cap: 429 with error_code, no retry-after."""
        emulator.inject("anthropic", "quota_daily", times=1)
        response = post()
        assert response.status_code == 429
        error = _error(response)
        assert error["type"] == "rate_limit_error"
        assert error["details"] == {"error_code": "enforced_spend_limit_reached"}
        assert "retry-after" not in response.headers

    def test_server_error_is_500_api_error(self, emulator: Emulator, post: Post) -> None:
        """server_error is 500 api_error."""
        emulator.inject("anthropic", "server_error", times=1)
        response = post()
        assert response.status_code == 500
        assert _error(response) == {"type": "api_error", "message": "Internal server error"}

    def test_unavailable_is_529_overloaded(self, emulator: Emulator, post: Post) -> None:
        """unavailable is Anthropic's 529 overloaded_error "Overloaded"."""
        emulator.inject("anthropic", "unavailable", times=1)
        response = post()
        assert response.status_code == 529
        assert _error(response) == {"type": "overloaded_error", "message": "Overloaded"}

    def test_error_faults_win_over_a_missing_key(self, emulator: Emulator, post: Post) -> None:
        """An active fault answers before the key is checked."""
        emulator.inject("anthropic", "unavailable", times=1)
        assert post(key=None).status_code == 529
        assert post(key=None).status_code == 401

    def test_faults_stay_with_their_provider(self, emulator: Emulator, post: Post) -> None:
        """A Gemini fault does not touch Anthropic requests, and counts are per provider."""
        emulator.inject("gemini", "server_error")
        assert post().status_code == 200
        assert emulator.request_count("anthropic") == 1
        assert emulator.request_count("gemini") == 0

    def test_slow_delays_then_answers(self, emulator: Emulator, post: Post) -> None:
        """slow waits at least delay_s, then answers normally."""
        emulator.inject("anthropic", "slow", times=1, delay_s=0.2)
        started = time.monotonic()
        response = post()
        assert time.monotonic() - started >= 0.2
        assert response.status_code == 200

    def test_timeout_never_answers(self, emulator: Emulator, post: Post) -> None:
        """timeout holds the connection until the client gives up."""
        emulator.inject("anthropic", "timeout", times=1)
        with pytest.raises(httpx.ReadTimeout):
            post(timeout=0.3)
        assert post().status_code == 200

    def test_reset_drops_the_connection(self, emulator: Emulator, post: Post) -> None:
        """reset closes the TCP connection without any response."""
        emulator.inject("anthropic", "reset", times=1)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            post()
        assert post().status_code == 200

    def test_malformed_json_is_200_with_a_broken_body(self, emulator: Emulator, post: Post) -> None:
        """malformed_json is a complete 200 whose body does not parse."""
        emulator.inject("anthropic", "malformed_json", times=1)
        response = post()
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)

    def test_truncated_stops_short_of_content_length(
        self, emulator: Emulator, client: httpx.Client
    ) -> None:
        """truncated sends fewer body bytes than Content-Length promises, then closes."""
        emulator.inject("anthropic", "truncated", times=1)
        headers = {"x-api-key": emulator.key_for("anthropic"), "anthropic-version": VERSION}
        with client.stream("POST", PATH, json=_body(), headers=headers) as response:
            assert response.status_code == 200
            assert int(response.headers["content-length"]) > 0
            with pytest.raises(httpx.RemoteProtocolError):
                response.read()

    def test_omit_usage_leaves_out_usage(self, emulator: Emulator, post: Post) -> None:
        """omit_usage answers a normal 200 without the usage object, once."""
        emulator.inject("anthropic", "omit_usage", times=1)
        body = post().json()
        assert "usage" not in body
        assert body["stop_reason"] == "end_turn"
        assert "usage" in post().json()

    def test_faulted_requests_are_counted(self, emulator: Emulator, post: Post) -> None:
        """request_count includes requests answered with a fault."""
        emulator.inject("anthropic", "rate_limit", times=2)
        assert [post().status_code for _ in range(3)] == [429, 429, 200]
        assert emulator.request_count("anthropic") == 3

    def test_fault_over_the_control_endpoint(self, client: httpx.Client, post: Post) -> None:
        """POST /_emulator/faults with provider anthropic applies to /v1/messages."""
        fault = {"provider": "anthropic", "kind": "unavailable", "times": 1}
        assert client.post("/_emulator/faults", json=fault).status_code == 200
        assert [post().status_code for _ in range(2)] == [529, 200]
