"""The provider × (unary, stream, error class, usage) matrix of issue #3, over real HTTP.

Every adapter is driven through `Client` against the emulator on 127.0.0.1: success with the
exact usage mapping, every error class the emulator can produce (unary and stream), in-stream
failures after text, and missing-usage estimation. The error classes the emulator cannot produce
for a provider (PermissionDenied everywhere, BadRequest outside OpenAI, Anthropic's cache-write
usage) are at the end of the file, answered byte-exact by respx (marked "respx").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from nexus_llm import Client, Response
from nexus_llm.emulator import Emulator
from nexus_llm.errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from nexus_llm.types import Usage
from tests.support import emulator_settings, jsonl_lines

PROVIDERS = ["gemini", "openai", "anthropic", "glm"]
MODES = ["unary", "stream"]
# "Summarise : the disk is full ." → 7 prompt tokens; the reply "Emulated <p> reply to 7 prompt
# tokens ." → 8 tokens, plus the reasoning tokens the emulator is told to report.
PROMPT = "Summarise: the disk is full."
PROMPT_TOKENS, REPLY_TOKENS, THOUGHTS, CACHED = 7, 8, 20, 2
MODEL_VARIABLE = {
    "gemini": "GEMINI_MODEL",
    "openai": "OPENAI_MODEL",
    "anthropic": "ANTHROPIC_MODEL",
    "glm": "GLM_MODEL",
}


def call(client: Client, mode: str, prompt: str = PROMPT, **options: Any) -> Response:
    """One call in `mode`: `generate`, or `generate_stream` drained to its final response."""
    if mode == "unary":
        return client.generate(prompt, purpose="matrix", **options)
    with client.generate_stream(prompt, purpose="matrix", **options) as stream:
        text = "".join(stream)
    assert text == stream.response.text
    return stream.response


def logs(tmp_path: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return (
        jsonl_lines(tmp_path / "logs" / "audit.jsonl"),
        jsonl_lines(tmp_path / "logs" / "ledger.jsonl"),
    )


# ---------------------------------------------------------------------------------------------
# Success and the exact usage mapping
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_success_maps_every_usage_field(
    fresh_emulator: Emulator, tmp_path: Path, provider: str, mode: str
) -> None:
    """Input, output, cached and reasoning tokens land in `Usage` and the ledger line exactly.

    Anthropic's wire `input_tokens` excludes cache reads; ours is the whole prompt, so the
    mapping is the same for all four. No emulated provider writes to a cache (see the respx
    test below for Anthropic's cache_creation_input_tokens).
    """
    fresh_emulator.configure(provider, thoughts_tokens=THOUGHTS, cached_tokens=CACHED)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    with Client(settings) as client:
        reply = call(client, mode)
    assert reply.provider == provider
    assert reply.text == f"Emulated {provider} reply to {PROMPT_TOKENS} prompt tokens."
    assert reply.usage == Usage(
        input_tokens=PROMPT_TOKENS,
        output_tokens=REPLY_TOKENS + THOUGHTS,
        cached_tokens=CACHED,
        reasoning_tokens=THOUGHTS,
        cache_write_tokens=0,
    )
    assert not reply.approx_tokens
    audit, ledger = logs(tmp_path)
    assert [e["event"] for e in audit] == ["llm_success"]
    [line] = ledger
    assert line["request_id"] == reply.request_id
    assert (line["input_tokens"], line["output_tokens"]) == (PROMPT_TOKENS, REPLY_TOKENS + THOUGHTS)
    assert (line["cached_tokens"], line["reasoning_tokens"]) == (CACHED, THOUGHTS)
    assert line["approx_tokens"] is False
    assert line["actual_cost_usd"] == pytest.approx(reply.cost_usd)
    assert fresh_emulator.request_count(provider) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_usage_is_estimated_exactly(
    fresh_emulator: Emulator, tmp_path: Path, provider: str, mode: str
) -> None:
    """Without usage: ceil(chars / 4) for prompt and reply, no cached/reasoning, flagged."""
    fresh_emulator.configure(provider, thoughts_tokens=THOUGHTS, cached_tokens=CACHED)
    fresh_emulator.inject(provider, "omit_usage", times=1)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    with Client(settings) as client:
        reply = call(client, mode, "hello there")
    assert reply.text == f"Emulated {provider} reply to 2 prompt tokens."
    assert reply.approx_tokens
    expected = Usage(
        input_tokens=math.ceil(len("hello there") / 4),
        output_tokens=math.ceil(len(reply.text) / 4),
    )
    assert reply.usage == expected
    [line] = logs(tmp_path)[1]
    assert line["approx_tokens"] is True
    assert (line["input_tokens"], line["output_tokens"]) == (3, expected.output_tokens)
    assert (line["cached_tokens"], line["reasoning_tokens"]) == (0, 0)
    assert line["actual_cost_usd"] == pytest.approx(reply.cost_usd)


# ---------------------------------------------------------------------------------------------
# Error classes the emulator produces, unary and stream (before any text)
# ---------------------------------------------------------------------------------------------

# provider → the provider_code of each error fault, and the rate-limit hint each sends for an
# injected retry_after_s of 1.5 s (Anthropic rounds retry-after up; GLM sends none).
CODES: dict[str, dict[str, str]] = {
    "gemini": {
        "bad_key": "INVALID_ARGUMENT",
        "rate_limit": "RESOURCE_EXHAUSTED",
        "quota_daily": "RESOURCE_EXHAUSTED",
        "server_error": "INTERNAL",
        "unavailable": "UNAVAILABLE",
    },
    "openai": {
        "bad_key": "invalid_api_key",
        "rate_limit": "rate_limit_exceeded",
        "quota_daily": "insufficient_quota",
        "server_error": "server_error",
        "unavailable": "server_error",
    },
    "anthropic": {
        "bad_key": "authentication_error",
        "rate_limit": "rate_limit_error",
        "quota_daily": "enforced_spend_limit_reached",
        "server_error": "api_error",
        "unavailable": "overloaded_error",
    },
    "glm": {
        "bad_key": "1002",
        "rate_limit": "1302",
        "quota_daily": "1113",
        "server_error": "500",
        "unavailable": "1305",
    },
}
STATUS: dict[str, dict[str, int]] = {
    "gemini": {"bad_key": 400, "unavailable": 503},
    "openai": {"bad_key": 401, "unavailable": 503},
    "anthropic": {"bad_key": 401, "unavailable": 529},
    "glm": {"bad_key": 401, "unavailable": 429},
}
HINT = {"gemini": 1.5, "openai": 1.5, "anthropic": 2.0, "glm": None}

ERROR_FAULTS: list[tuple[str, type[ProviderError], bool]] = [
    ("bad_key", AuthenticationError, False),
    ("rate_limit", RateLimitError, True),
    ("quota_daily", QuotaExhaustedError, False),
    ("server_error", ServerError, True),
    ("unavailable", OverloadedError, True),
]
WIRE_FAULTS: list[tuple[str, type[ProviderError]]] = [
    ("reset", ProviderConnectionError),
    ("malformed_json", MalformedResponseError),
    ("truncated", ProviderConnectionError),
]


def _drain(stream: Iterable[str], into: list[str]) -> None:
    """Collect the stream's text until it ends or fails (what arrived stays in `into`)."""
    for text in stream:
        into.append(text)


def _raise(
    settings: Any, mode: str, *, http_backend: Any = "auto", **options: Any
) -> tuple[ProviderError, list[str]]:
    """Make one call that must fail; return the error and the text that arrived first."""
    received: list[str] = []
    with Client(settings, http_backend=http_backend) as client:
        if mode == "unary":
            with pytest.raises(ProviderError) as caught:
                client.generate(PROMPT, purpose="matrix", **options)
        else:
            stream = client.generate_stream(PROMPT, purpose="matrix", **options)
            with pytest.raises(ProviderError) as caught:
                _drain(stream, received)
            stream.close()
    return caught.value, received


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("kind", "error", "retryable"), ERROR_FAULTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_fault_is_its_exact_class(
    fresh_emulator: Emulator,
    tmp_path: Path,
    provider: str,
    kind: str,
    error: type[ProviderError],
    retryable: bool,
    mode: str,
) -> None:
    """The provider's real error body becomes the exact class, code, status and hint."""
    fresh_emulator.inject(provider, kind, times=1, retry_after_s=1.5)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    caught, received = _raise(settings, mode)
    assert type(caught) is error
    assert caught.provider == provider
    assert caught.retryable is retryable
    assert caught.provider_code == CODES[provider][kind]
    expected_status = STATUS[provider].get(kind, {"rate_limit": 429, "quota_daily": 429}.get(kind))
    assert caught.status == (expected_status if expected_status is not None else 500)
    assert caught.retry_after_s == (HINT[provider] if kind == "rate_limit" else None)
    assert not caught.after_output
    assert received == []
    audit, ledger = logs(tmp_path)
    assert [e["event"] for e in audit] == ["llm_error"]
    assert audit[0]["error_type"] == error.error_type
    assert ledger == []
    assert fresh_emulator.key_for(provider) not in str(caught)
    assert fresh_emulator.request_count(provider) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("kind", "error"), WIRE_FAULTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_wire_fault_is_its_exact_class(
    fresh_emulator: Emulator,
    tmp_path: Path,
    provider: str,
    kind: str,
    error: type[ProviderError],
    mode: str,
) -> None:
    """A dropped connection, a non-JSON 200 and a truncated body: exact class, retryable.

    In a stream, malformed_json and truncated hit after some text, so the error says so.
    """
    fresh_emulator.inject(provider, kind, times=1)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    caught, received = _raise(settings, mode)
    assert type(caught) is error
    assert caught.retryable
    after_text = mode == "stream" and kind != "reset"
    assert caught.after_output is after_text
    assert bool(received) is after_text
    assert [e["event"] for e in logs(tmp_path)[0]] == ["llm_error"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_a_timeout_error(
    fresh_emulator: Emulator, tmp_path: Path, provider: str, mode: str
) -> None:
    """A provider that never answers: ProviderTimeoutError, retryable, after LLM_TIMEOUT_S."""
    fresh_emulator.inject(provider, "timeout", times=1)
    settings = emulator_settings(fresh_emulator, tmp_path, provider, LLM_TIMEOUT_S="0.3")
    caught, received = _raise(settings, mode)
    assert type(caught) is ProviderTimeoutError
    assert caught.retryable
    assert received == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_slow_answer_within_the_timeout_succeeds(
    fresh_emulator: Emulator, tmp_path: Path, provider: str, mode: str
) -> None:
    """A first byte late but inside LLM_TIMEOUT_S is a normal, fully billed success."""
    fresh_emulator.inject(provider, "slow", times=1, delay_s=0.2)
    settings = emulator_settings(fresh_emulator, tmp_path, provider, LLM_TIMEOUT_S="5")
    with Client(settings) as client:
        reply = call(client, mode)
    assert reply.usage.input_tokens == PROMPT_TOKENS
    assert not reply.approx_tokens
    assert fresh_emulator.request_count(provider) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limit_hint_paces_the_retry(
    fresh_emulator: Emulator, tmp_path: Path, provider: str, mode: str
) -> None:
    """With retries on, the wait before the second try is the provider's hint (GLM: backoff)."""
    fresh_emulator.inject(provider, "rate_limit", times=1, retry_after_s=1.5)
    settings = emulator_settings(
        fresh_emulator, tmp_path, provider, LLM_RETRY_MAX_ATTEMPTS="2", LLM_RETRY_BASE_S="0.01"
    )
    sleeps: list[float] = []
    with Client(settings, sleep=sleeps.append) as client:
        reply = call(client, mode)
    assert reply.text
    hint = HINT[provider]
    if hint is None:
        [wait] = sleeps
        assert wait < 1.0, "GLM sends no hint: the backoff's own short wait"
    else:
        assert sleeps == [hint]
    assert fresh_emulator.request_count(provider) == 2


# The in-stream error each emulated provider sends: Gemini and Anthropic an overload, OpenAI and
# GLM a server error (GLM's business code 500).
IN_STREAM: dict[str, tuple[type[ProviderError], str]] = {
    "gemini": (OverloadedError, "UNAVAILABLE"),
    "openai": (ServerError, "server_error"),
    "anthropic": (OverloadedError, "overloaded_error"),
    "glm": (ServerError, "500"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_in_stream_error_event_is_its_exact_class(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    """The provider's error event after some text: exact class and code, after_output."""
    fresh_emulator.inject(provider, "stream_error", times=1)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    caught, received = _raise(settings, "stream")
    error, code = IN_STREAM[provider]
    assert type(caught) is error
    assert caught.provider_code == code
    assert caught.after_output
    assert received


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unary_stream_error_is_the_same_error_with_its_status(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    """stream_error on a unary request answers that error with its HTTP status."""
    fresh_emulator.inject(provider, "stream_error", times=1)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    caught, _ = _raise(settings, "unary")
    error, code = IN_STREAM[provider]
    assert type(caught) is error
    assert caught.provider_code == code
    assert caught.status == {"gemini": 503, "openai": 500, "anthropic": 529, "glm": 500}[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_cut_without_end_marker_is_malformed(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    """A clean close without the stream's end is noticed: MalformedResponseError after text."""
    fresh_emulator.inject(provider, "stream_cut", times=1)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    caught, received = _raise(settings, "stream")
    assert type(caught) is MalformedResponseError
    assert caught.after_output
    assert received


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_model_is_not_found(
    fresh_emulator: Emulator, tmp_path: Path, provider: str, mode: str
) -> None:
    """Each provider's own "no such model" answer is NotFoundError (GLM's comes as 400/1211)."""
    settings = emulator_settings(
        fresh_emulator, tmp_path, provider, **{MODEL_VARIABLE[provider]: "nosuch-model-9"}
    )
    caught, _ = _raise(settings, mode)
    assert type(caught) is NotFoundError
    assert not caught.retryable
    status, code = {
        "gemini": (404, "NOT_FOUND"),
        "openai": (404, "model_not_found"),
        "anthropic": (404, "not_found_error"),
        "glm": (400, "1211"),
    }[provider]
    assert (caught.status, caught.provider_code) == (status, code)


@pytest.mark.parametrize("mode", MODES)
def test_openai_json_mode_without_json_is_bad_request(
    fresh_emulator: Emulator, tmp_path: Path, mode: str
) -> None:
    """OpenAI's 400 for JSON mode without "json" in the prompt is BadRequestError."""
    settings = emulator_settings(fresh_emulator, tmp_path, "openai")
    caught, _ = _raise(settings, mode, json_mode=True)
    assert type(caught) is BadRequestError
    assert (caught.status, caught.retryable) == (400, False)
    assert "must contain the word 'json'" in caught.message


# ---------------------------------------------------------------------------------------------
# respx: byte-exact replies for what the emulator cannot produce. The bodies are the providers'
# real ones from shared/reference/<provider>.md; no request leaves the process.
# ---------------------------------------------------------------------------------------------


RESPX_BACKEND = "httpx"  # respx patches httpx only: the urllib3 sender would pass it by


@pytest.fixture
def mocked() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router


def _reply(status: int, body: dict[str, object]) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json; charset=UTF-8"},
    )


# respx — 403 answers (shared/reference: gemini.md §6, openai.md §6, anthropic.md §6, glm.md §6:
# GLM's 1220 "no access to API", sent with the platform's 434 "no API permission").
PERMISSION_DENIED: dict[str, tuple[int, dict[str, object], str]] = {
    "gemini": (
        403,
        {
            "error": {
                "code": 403,
                "message": "Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of API consumer "
                "identity to call this API.",
                "status": "PERMISSION_DENIED",
            }
        },
        "PERMISSION_DENIED",
    ),
    "openai": (
        403,
        {
            "error": {
                "message": "Country, region, or territory not supported",
                "type": "request_forbidden",
                "param": None,
                "code": "unsupported_country_region_territory",
            }
        },
        "unsupported_country_region_territory",
    ),
    "anthropic": (
        403,
        {
            "type": "error",
            "error": {
                "type": "permission_error",
                "message": "Your API key does not have permission to use the specified resource.",
            },
            "request_id": "req_011CPermissionDenied00",
        },
        "permission_error",
    ),
    "glm": (434, {"error": {"code": "1220", "message": "No access to this API"}}, "1220"),
}

# respx — 400 answers for the providers whose emulator accepts every request the client can
# build (gemini.md §6 INVALID_ARGUMENT, anthropic.md §6 invalid_request_error, glm.md §6 1214).
BAD_REQUEST: dict[str, tuple[int, dict[str, object], str]] = {
    "gemini": (
        400,
        {
            "error": {
                "code": 400,
                "message": "Request contains an invalid argument.",
                "status": "INVALID_ARGUMENT",
            }
        },
        "INVALID_ARGUMENT",
    ),
    "anthropic": (
        400,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "prompt is too long: 215000 tokens > 200000 maximum",
            },
            "request_id": "req_011CBadRequest000000",
        },
        "invalid_request_error",
    ),
    "glm": (
        400,
        {"error": {"code": "1214", "message": "Invalid messages parameter. Please check."}},
        "1214",
    ),
}


RESPX_ERRORS = [
    *((p, PERMISSION_DENIED[p], PermissionDeniedError) for p in PROVIDERS),
    *((p, BAD_REQUEST[p], BadRequestError) for p in sorted(BAD_REQUEST)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("provider", "answer", "expected"),
    RESPX_ERRORS,
    ids=[f"{p}-{cls.__name__}" for p, _, cls in RESPX_ERRORS],
)
def test_respx_error_is_its_class_and_not_retried(
    emulator: Emulator,
    mocked: respx.MockRouter,
    tmp_path: Path,
    provider: str,
    answer: tuple[int, dict[str, object], str | None],
    expected: type[ProviderError],
    mode: str,
) -> None:
    """respx: each provider's 403 (GLM: 434/1220) is PermissionDeniedError, and a 400 that is
    not about the key or the model is BadRequestError; neither is retried."""
    status, body, code = answer
    route = mocked.route().mock(return_value=_reply(status, body))
    settings = emulator_settings(
        emulator, tmp_path, provider, LLM_RETRY_MAX_ATTEMPTS="3", LLM_RETRY_BASE_S="0.01"
    )
    caught, _ = _raise(settings, mode, http_backend=RESPX_BACKEND)
    assert type(caught) is expected
    assert (caught.status, caught.provider_code, caught.retryable) == (status, code, False)
    assert route.call_count == 1
    assert jsonl_lines(settings.audit_log_path)[-1]["error_type"] == expected.error_type


# respx — Anthropic usage with a cache write (anthropic.md §4-5): input_tokens is the uncached
# rest; ours is the whole prompt = 5 + 40 (written) + 10 (read) = 55.
_ANTHROPIC_USAGE = {
    "input_tokens": 5,
    "cache_creation_input_tokens": 40,
    "cache_read_input_tokens": 10,
    "output_tokens": 12,
}
_ANTHROPIC_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        **_ANTHROPIC_USAGE,
        "cache_creation": {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
    },
}


def _anthropic_stream() -> bytes:
    start = {
        **_ANTHROPIC_MESSAGE,
        "content": [],
        "stop_reason": None,
        "usage": {**_ANTHROPIC_USAGE, "output_tokens": 1},
    }
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hello"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 12},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


@pytest.mark.parametrize("mode", MODES)
def test_respx_anthropic_cache_write_usage(
    emulator: Emulator, mocked: respx.MockRouter, tmp_path: Path, mode: str
) -> None:
    """respx: cache_creation_input_tokens → cache_write_tokens, and joins the whole prompt."""
    if mode == "unary":
        reply = _reply(200, _ANTHROPIC_MESSAGE)
    else:
        reply = httpx.Response(
            200, content=_anthropic_stream(), headers={"content-type": "text/event-stream"}
        )
    mocked.route().mock(return_value=reply)
    settings = emulator_settings(
        emulator, tmp_path, "anthropic", ANTHROPIC_MODEL="claude-haiku-4-5"
    )
    with Client(settings, http_backend=RESPX_BACKEND) as client:
        response = call(client, mode)
    assert response.text == "Hello"
    assert response.usage == Usage(
        input_tokens=55,
        output_tokens=12,
        cached_tokens=10,
        reasoning_tokens=0,
        cache_write_tokens=40,
    )
    assert not response.approx_tokens
    # claude-haiku-4-5: 5 uncached × $1.00 + 10 read × $0.10 + 40 written × $1.25 + 12 × $5.00
    expected = (5 * 1.00 + 10 * 0.10 + 40 * 1.25 + 12 * 5.00) / 1e6
    assert response.cost_usd == pytest.approx(expected)
    [line] = jsonl_lines(settings.cost_ledger_path)
    assert (line["input_tokens"], line["cached_tokens"]) == (55, 10)
    assert line["actual_cost_usd"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------
# SDK conformance of our stream: the official SDK streams the same emulated answer, and the text
# and usage it reads are what our adapter's stream read. (tests/conformance compares the SDK's
# stream with the SDK's unary call and our unary call only.)
# ---------------------------------------------------------------------------------------------


def _field(details: Any, name: str) -> Any:
    # zhipuai keeps unary detail blocks as dicts but gives stream chunks typed objects.
    return details[name] if isinstance(details, dict) else getattr(details, name)


def _sdk_stream(emulator: Emulator, provider: str) -> tuple[str, Usage]:
    """Text and usage of one streamed call through the provider's official SDK, normalised."""
    base, key = emulator.base_url_for(provider), emulator.key_for(provider)
    messages = [{"role": "user", "content": PROMPT}]
    if provider == "openai":
        openai = pytest.importorskip("openai")
        with openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=5.0) as sdk:
            chunks = list(
                sdk.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        u = chunks[-1].usage
        return text, Usage(
            input_tokens=u.prompt_tokens,
            output_tokens=u.completion_tokens,
            cached_tokens=u.prompt_tokens_details.cached_tokens,
            reasoning_tokens=u.completion_tokens_details.reasoning_tokens,
        )
    if provider == "glm":
        zhipuai = pytest.importorskip("zhipuai")
        sdk = zhipuai.ZhipuAI(base_url=base, api_key=key, max_retries=0, timeout=5.0)
        chunks = list(sdk.chat.completions.create(model="glm-4.5", messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        u = chunks[-1].usage
        return text, Usage(
            input_tokens=u.prompt_tokens,
            output_tokens=u.completion_tokens,
            cached_tokens=_field(u.prompt_tokens_details, "cached_tokens"),
            reasoning_tokens=_field(u.completion_tokens_details, "reasoning_tokens"),
        )
    if provider == "anthropic":
        anthropic = pytest.importorskip("anthropic")
        sdk = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=5.0)
        with (
            sdk,
            sdk.messages.stream(
                model="claude-haiku-4-5", max_tokens=256, messages=messages
            ) as events,
        ):
            text = "".join(events.text_stream)
            u = events.get_final_message().usage
        read, written = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
        return text, Usage(
            input_tokens=u.input_tokens + read + written,
            output_tokens=u.output_tokens,
            cached_tokens=read,
            reasoning_tokens=u.output_tokens_details.thinking_tokens,
            cache_write_tokens=written,
        )
    genai = pytest.importorskip("google.genai")
    options = genai.types.HttpOptions(
        base_url=base,
        api_version="v1beta",
        timeout=5000,
        retry_options=genai.types.HttpRetryOptions(attempts=1),
    )
    with genai.Client(api_key=key, vertexai=False, http_options=options) as sdk:
        chunks = list(sdk.models.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT))
    text = "".join(c.text or "" for c in chunks)
    u = chunks[-1].usage_metadata
    return text, Usage(
        input_tokens=u.prompt_token_count,
        output_tokens=u.candidates_token_count + u.thoughts_token_count,
        cached_tokens=u.cached_content_token_count,
        reasoning_tokens=u.thoughts_token_count,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_stream_reads_what_our_stream_reads(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    """Conformance: the official SDK's stream and ours agree on text and every usage field."""
    fresh_emulator.configure(provider, thoughts_tokens=THOUGHTS, cached_tokens=CACHED)
    sdk_text, sdk_usage = _sdk_stream(fresh_emulator, provider)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    with Client(settings) as client:
        ours = call(client, "stream")
    assert ours.text == sdk_text == f"Emulated {provider} reply to {PROMPT_TOKENS} prompt tokens."
    assert ours.usage == sdk_usage
    assert sdk_usage.cached_tokens == CACHED
    assert sdk_usage.reasoning_tokens == THOUGHTS
