"""Streaming on the adapter side: stream requests, and SSE events → deltas and a whole reply.

Every stream runs through the real `SSEDecoder`, so these are the bytes a transport would see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from nexus_llm.config import ProviderSettings, Secret
from nexus_llm.errors import (
    BadRequestError,
    MalformedResponseError,
    OverloadedError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from nexus_llm.providers import adapter_for, supported_providers
from nexus_llm.providers.base import ProviderAdapter
from nexus_llm.providers.sse import SSEDecoder, SSEEvent
from nexus_llm.types import ChatRequest, HttpReply, Message, ProviderReply, Usage

KEYS = {
    "gemini": "AIzaFAKE-key-do-not-log-0123456789",
    "openai": "sk-proj-FAKEkeyDoNotLog0123456789abcd",
    "anthropic": "sk-ant-api03-FAKE-key-do-not-log-0123456789",
    "glm": "0123456789abcdef0123456789abcdef.FAKEsecretDoNotLog",
}
BASES = {
    "gemini": "https://generativelanguage.googleapis.com",
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "glm": "https://open.bigmodel.cn/api/paas/v4",
}
MODELS = {
    "gemini": "gemini-2.5-flash",
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "glm": "glm-4-flash",
}
ALL = pytest.mark.parametrize("provider", ["gemini", "openai", "anthropic", "glm"])
REQUEST = ChatRequest(
    messages=(Message("user", "Classify: 'disk full on node-3'"),),
    system="You are terse.",
    temperature=0.2,
    max_tokens=256,
    json_mode=True,
)


def _adapter(provider: str) -> ProviderAdapter:
    adapter = adapter_for(provider)
    assert adapter is not None
    return adapter


def _settings(provider: str) -> ProviderSettings:
    return ProviderSettings(
        name=provider,
        api_key=Secret(KEYS[provider]),
        base_url=BASES[provider],
        model=MODELS[provider],
        timeout_s=5.0,
    )


def _sse(*events: object, event_names: Iterable[str] | None = None, eol: str = "\n") -> bytes:
    """An event stream: each event a JSON object (or a literal string) on one data line."""
    names = list(event_names) if event_names is not None else [""] * len(events)
    out = []
    for name, data in zip(names, events, strict=True):
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        head = f"event: {name}{eol}" if name else ""
        out.append(f"{head}data: {text}{eol}{eol}")
    return "".join(out).encode()


def _run(
    provider: str, chunks: Iterable[bytes], *, model: str = "asked-model"
) -> tuple[list[str], ProviderReply]:
    """Feed the chunks through a decoder and a fresh parser: (deltas, finish())."""
    decoder = SSEDecoder(provider=provider)
    parser = _adapter(provider).new_stream_parser(model=model)
    deltas: list[str] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            deltas.extend(parser.feed(event))
    for event in decoder.flush():
        deltas.extend(parser.feed(event))
    assert parser.done
    return deltas, parser.finish()


def _bytewise(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def _stream_error(provider: str, raw: bytes) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        _run(provider, [raw])
    return caught.value


def _unary(provider: str, body: object) -> ProviderReply:
    reply = HttpReply(200, {"content-type": "application/json"}, json.dumps(body).encode())
    return _adapter(provider).parse_reply(reply, model="asked-model")


# ---- the reference documents' example streams -------------------------------------------------

GEMINI_REFERENCE = (
    b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"},"index":0}],'
    b'"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},'
    b'"modelVersion":"gemini-2.5-flash","responseId":"abc"}\r\n\r\n'
    b'data: {"candidates":[{"content":{"parts":[{"text":"lo!"}],"role":"model"},'
    b'"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,'
    b'"candidatesTokenCount":3,"thoughtsTokenCount":20,"totalTokenCount":31},'
    b'"modelVersion":"gemini-2.5-flash","responseId":"abc"}\r\n\r\n'
)
OPENAI_REFERENCE = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764150000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    b'"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764150000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hi"},'
    b'"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764150000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    b'"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764150000,'
    b'"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":2,'
    b'"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_REFERENCE = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,'
    b'"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,'
    b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
    b"\n\n"
    b"event: ping\n"
    b'data: {"type":"ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"Hello"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":15}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)


def _glm_chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> object:
    return {
        "id": "20251126113300a1b2c3d4e5f64a1b",
        "created": 1764156780,
        "model": "glm-4.5",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


GLM_REFERENCE = _sse(
    _glm_chunk({"role": "assistant", "reasoning_content": "Thinking about it"}),
    _glm_chunk({"content": "Hi "}),
    _glm_chunk({"content": "there"}),
    _glm_chunk(
        {"content": ""},
        "stop",
        usage={"prompt_tokens": 28, "completion_tokens": 15, "total_tokens": 43},
    ),
    "[DONE]",
)

REFERENCE: dict[str, tuple[bytes, list[str], ProviderReply]] = {
    "gemini": (
        GEMINI_REFERENCE,
        ["Hel", "lo!"],
        ProviderReply(
            text="Hello!",
            finish_reason="STOP",
            model="gemini-2.5-flash",
            response_id="abc",
            usage=Usage(input_tokens=8, output_tokens=23, reasoning_tokens=20),
        ),
    ),
    "openai": (
        OPENAI_REFERENCE,
        ["Hi"],
        ProviderReply(
            text="Hi",
            finish_reason="stop",
            model="gpt-4o-mini",
            response_id="chatcmpl-1",
            usage=Usage(input_tokens=8, output_tokens=2),
        ),
    ),
    "anthropic": (
        ANTHROPIC_REFERENCE,
        ["Hello"],
        ProviderReply(
            text="Hello",
            finish_reason="end_turn",
            model="claude-sonnet-4-5",
            response_id="msg_1",
            usage=Usage(input_tokens=25, output_tokens=15),
        ),
    ),
    "glm": (
        GLM_REFERENCE,
        ["Hi ", "there"],
        ProviderReply(
            text="Hi there",
            finish_reason="stop",
            model="glm-4.5",
            response_id="20251126113300a1b2c3d4e5f64a1b",
            usage=Usage(input_tokens=28, output_tokens=15),
        ),
    ),
}

# Each stream cut before its end marker: the last event is lost.
TRUNCATED: dict[str, tuple[bytes, str]] = {
    "gemini": (GEMINI_REFERENCE[: GEMINI_REFERENCE.index(b"data:", 10)], "finishReason"),
    "openai": (OPENAI_REFERENCE[: OPENAI_REFERENCE.index(b"data: [DONE]")], "[DONE]"),
    "anthropic": (
        ANTHROPIC_REFERENCE[: ANTHROPIC_REFERENCE.index(b"event: message_stop")],
        "message_stop",
    ),
    "glm": (GLM_REFERENCE[: GLM_REFERENCE.index(b"data: [DONE]")], "[DONE]"),
}


class TestReferenceStreams:
    @ALL
    def test_reference_stream(self, provider: str) -> None:
        """The reference document's example stream gives its deltas and the whole reply."""
        raw, deltas, reply = REFERENCE[provider]
        assert _run(provider, [raw]) == (deltas, reply)

    @ALL
    def test_one_byte_at_a_time(self, provider: str) -> None:
        """The stream fed a byte at a time gives the same deltas and reply."""
        raw, deltas, reply = REFERENCE[provider]
        assert _run(provider, _bytewise(raw)) == (deltas, reply)

    @ALL
    def test_crlf_and_lf_read_the_same(self, provider: str) -> None:
        """\\r\\n and \\n line ends give the same result."""
        raw, deltas, reply = REFERENCE[provider]
        other = raw.replace(b"\r\n", b"\n") if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")
        assert _run(provider, [other]) == (deltas, reply)

    @ALL
    def test_done_only_after_the_end_marker(self, provider: str) -> None:
        """`done` turns true with the end marker, not before."""
        raw, _, _ = REFERENCE[provider]
        decoder = SSEDecoder()
        events = decoder.feed(raw) + decoder.flush()
        parser = _adapter(provider).new_stream_parser(model="m")
        for event in events[:-1]:
            parser.feed(event)
            assert not parser.done
        parser.feed(events[-1])
        assert parser.done

    @ALL
    def test_truncated_stream_is_malformed(self, provider: str) -> None:
        """A stream that ends before its end marker is a retryable MalformedResponseError."""
        raw, missing = TRUNCATED[provider]
        decoder = SSEDecoder()
        parser = _adapter(provider).new_stream_parser(model="m")
        for event in decoder.feed(raw) + decoder.flush():
            parser.feed(event)
        assert not parser.done
        with pytest.raises(MalformedResponseError) as caught:
            parser.finish()
        assert missing in str(caught.value)
        assert caught.value.provider == provider
        assert caught.value.retryable

    @ALL
    def test_event_that_is_not_json_is_malformed(self, provider: str) -> None:
        """A data payload that is not a JSON object raises MalformedResponseError."""
        parser = _adapter(provider).new_stream_parser(model="m")
        name = "content_block_delta" if provider == "anthropic" else ""
        with pytest.raises(MalformedResponseError):
            parser.feed(SSEEvent(name, "{not json"))

    @ALL
    def test_model_falls_back_to_the_asked_one(self, provider: str) -> None:
        """When no event names a model, the reply carries the model asked for."""
        streams = {
            "gemini": _sse(
                {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}
            ),
            "openai": _sse({"choices": [{"index": 0, "delta": {"content": "x"}}]}, "[DONE]"),
            "glm": _sse({"choices": [{"index": 0, "delta": {"content": "x"}}]}, "[DONE]"),
            "anthropic": _sse({"type": "message_stop"}, event_names=["message_stop"]),
        }
        _, reply = _run(provider, [streams[provider]], model="asked-model")
        assert reply.model == "asked-model"
        assert reply.response_id is None


# ---- no usage, reasoning and cache tokens, unary equality ---------------------------------------

NO_USAGE: dict[str, bytes] = {
    "gemini": _sse(
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"}]},
    ),
    "openai": _sse(
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "ab"}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
        "[DONE]",
    ),
    "glm": _sse(_glm_chunk({"content": "ab"}, "length"), "[DONE]"),
    "anthropic": _sse(
        {"type": "message_start", "message": {"id": "m", "model": "c"}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ab"}},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}},
        {"type": "message_stop"},
        event_names=["message_start", "content_block_delta", "message_delta", "message_stop"],
    ),
}


@ALL
def test_no_usage_in_the_stream_is_none(provider: str) -> None:
    """A stream without usage gives usage None (the pipeline then estimates)."""
    _, reply = _run(provider, [NO_USAGE[provider]])
    assert reply.usage is None
    assert reply.text == "ab"


# The same usage numbers, once in a unary body and once spread over a stream. Each includes
# cached and reasoning tokens so that the whole mapping is compared.
GEMINI_USAGE = {
    "promptTokenCount": 120,
    "candidatesTokenCount": 12,
    "thoughtsTokenCount": 87,
    "cachedContentTokenCount": 64,
    "toolUsePromptTokenCount": 5,
    "totalTokenCount": 224,
}
CHAT_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 256},
}
ANTHROPIC_USAGE = {
    "input_tokens": 25,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 2000,
    "output_tokens": 400,
    "output_tokens_details": {"thinking_tokens": 150},
}

USAGE_CASES: dict[str, tuple[object, bytes, Usage]] = {
    "gemini": (
        {
            "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
            "usageMetadata": GEMINI_USAGE,
        },
        _sse(
            {
                "candidates": [{"content": {"parts": [{"text": "o"}]}}],
                "usageMetadata": {"promptTokenCount": 120, "totalTokenCount": 120},
            },
            {
                "candidates": [{"content": {"parts": [{"text": "k"}]}, "finishReason": "STOP"}],
                "usageMetadata": GEMINI_USAGE,
            },
        ),
        Usage(input_tokens=125, output_tokens=99, cached_tokens=64, reasoning_tokens=87),
    ),
    "openai": (
        {
            "choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}],
            "usage": CHAT_USAGE,
        },
        _sse(
            {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]},
            {"choices": [], "usage": CHAT_USAGE},
            "[DONE]",
        ),
        Usage(input_tokens=1200, output_tokens=300, cached_tokens=1024, reasoning_tokens=256),
    ),
    "glm": (
        {
            "choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}],
            "usage": CHAT_USAGE,
        },
        _sse(_glm_chunk({"content": "ok"}, "stop", usage=CHAT_USAGE), "[DONE]"),
        Usage(input_tokens=1200, output_tokens=300, cached_tokens=1024, reasoning_tokens=256),
    ),
    "anthropic": (
        {
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": ANTHROPIC_USAGE,
        },
        _sse(
            {
                "type": "message_start",
                "message": {
                    "usage": {
                        "input_tokens": 25,
                        "cache_creation_input_tokens": 300,
                        "cache_read_input_tokens": 2000,
                        "output_tokens": 1,
                    }
                },
            },
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ok"}},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 400, "output_tokens_details": {"thinking_tokens": 150}},
            },
            {"type": "message_stop"},
            event_names=["message_start", "content_block_delta", "message_delta", "message_stop"],
        ),
        Usage(
            input_tokens=2325,
            output_tokens=400,
            cached_tokens=2000,
            reasoning_tokens=150,
            cache_write_tokens=300,
        ),
    ),
}


@ALL
def test_stream_usage_equals_unary_usage(provider: str) -> None:
    """The same numbers map to the same Usage streamed or unary (cached, reasoning included)."""
    unary_body, stream, expected = USAGE_CASES[provider]
    unary = _unary(provider, unary_body)
    _, streamed = _run(provider, [stream])
    assert unary.usage == expected
    assert streamed.usage == expected
    assert (streamed.text, streamed.finish_reason) == (unary.text, unary.finish_reason)


# ---- in-stream errors --------------------------------------------------------------------------


def _openai_error(message: str, type_: str, code: str | None) -> bytes:
    return _sse(
        {"choices": [{"index": 0, "delta": {"content": "partial"}}]},
        {"error": {"message": message, "type": type_, "param": None, "code": code}},
    )


def _glm_error(code: str, message: str) -> bytes:
    return _sse(_glm_chunk({"content": "partial"}), {"error": {"code": code, "message": message}})


def _anthropic_error(type_: str, message: str) -> bytes:
    return _sse(
        {"type": "message_start", "message": {"id": "msg_1", "model": "c", "usage": {}}},
        {"type": "error", "error": {"type": type_, "message": message}},
        event_names=["message_start", "error"],
    )


def _gemini_error(error: dict[str, object]) -> bytes:
    return _sse({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]}, {"error": error})


ERRORS: list[tuple[str, bytes, type[ProviderError], bool]] = [
    (
        "openai",
        _openai_error("The server had an error while processing", "server_error", None),
        ServerError,
        True,
    ),
    (
        "openai",
        _openai_error(
            "Rate limit reached. Please try again in 2s.", "tokens", "rate_limit_exceeded"
        ),
        RateLimitError,
        True,
    ),
    (
        "openai",
        _openai_error(
            "You exceeded your current quota", "insufficient_quota", "insufficient_quota"
        ),
        QuotaExhaustedError,
        False,
    ),
    ("openai", _openai_error("bad", "invalid_request_error", None), BadRequestError, False),
    ("glm", _glm_error("1305", "The service may be temporarily overloaded"), OverloadedError, True),
    ("glm", _glm_error("1302", "Rate limit reached for requests"), RateLimitError, True),
    ("glm", _glm_error("1113", "Insufficient balance"), QuotaExhaustedError, False),
    ("glm", _glm_error("1301", "unsafe content"), BadRequestError, False),
    ("glm", _glm_error("500", "Internal error"), ServerError, True),
    ("anthropic", _anthropic_error("overloaded_error", "Overloaded"), OverloadedError, True),
    ("anthropic", _anthropic_error("rate_limit_error", "slow down"), RateLimitError, True),
    ("anthropic", _anthropic_error("api_error", "Internal server error"), ServerError, True),
    ("anthropic", _anthropic_error("invalid_request_error", "bad"), BadRequestError, False),
    ("anthropic", _anthropic_error("billing_error", "no credit"), QuotaExhaustedError, False),
    (
        "gemini",
        _gemini_error(
            {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
        ),
        OverloadedError,
        True,
    ),
    (
        "gemini",
        _gemini_error({"code": 500, "message": "Internal error", "status": "INTERNAL"}),
        ServerError,
        True,
    ),
    (
        "gemini",
        _gemini_error({"message": "quota", "status": "RESOURCE_EXHAUSTED"}),
        RateLimitError,
        True,
    ),
    ("gemini", _gemini_error({"message": "no code at all"}), ServerError, True),
    (
        "gemini",
        _gemini_error({"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}),
        BadRequestError,
        False,
    ),
]


@pytest.mark.parametrize(
    ("provider", "raw", "cls", "retryable"),
    ERRORS,
    ids=[f"{p}-{c.__name__}-{i}" for i, (p, _, c, _) in enumerate(ERRORS)],
)
def test_in_stream_error_is_typed(
    provider: str, raw: bytes, cls: type[ProviderError], retryable: bool
) -> None:
    """An error event after HTTP 200 raises the class the unary classification gives."""
    error = _stream_error(provider, raw)
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.provider == provider


def test_in_stream_error_comes_after_the_deltas_before_it() -> None:
    """Deltas before the error event were already handed out; the error event raises."""
    decoder = SSEDecoder()
    parser = _adapter("anthropic").new_stream_parser(model="m")
    events = decoder.feed(
        _sse(
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hel"}},
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            event_names=["content_block_delta", "error"],
        )
    )
    assert parser.feed(events[0]) == ["Hel"]
    with pytest.raises(OverloadedError) as caught:
        parser.feed(events[1])
    assert caught.value.provider_code == "overloaded_error"
    assert not parser.done


def test_gemini_in_stream_rate_limit_keeps_its_retry_delay() -> None:
    """A Gemini 429 inside the stream keeps the RetryInfo delay, as unary does."""
    error = _stream_error(
        "gemini",
        _gemini_error(
            {
                "code": 429,
                "message": "quota",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
                ],
            }
        ),
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after_s == 7.0
    assert error.status == 429


def test_openai_in_stream_error_does_not_echo_the_key() -> None:
    """An in-stream invalid-key message is redacted like the unary one."""
    error = _stream_error(
        "openai",
        _openai_error(
            "Incorrect API key provided: sk-abc123xyz. See docs.", "x", "invalid_api_key"
        ),
    )
    assert "sk-abc123xyz" not in str(error)


def test_anthropic_error_event_without_a_name_is_still_an_error() -> None:
    """A stream that omits `event:` lines is read by the `type` inside the data."""
    raw = _sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert isinstance(_stream_error("anthropic", raw), OverloadedError)


# ---- provider specifics ------------------------------------------------------------------------


class TestGemini:
    def test_thought_parts_are_not_text(self) -> None:
        """Thought parts are skipped, as in the unary reply."""
        raw = _sse(
            {"candidates": [{"content": {"parts": [{"text": "hmm", "thought": True}]}}]},
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "Hi", "thought": False}, {"text": "!"}]},
                        "finishReason": "STOP",
                    }
                ]
            },
        )
        deltas, reply = _run("gemini", [raw])
        assert deltas == ["Hi!"]
        assert reply.text == "Hi!"

    def test_last_usage_wins(self) -> None:
        """usageMetadata is cumulative: the last one seen is the reply's usage."""
        raw = _sse(
            {
                "candidates": [{"content": {"parts": [{"text": "a"}]}}],
                "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1},
            },
            {
                "candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2},
            },
            {"usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 5}},
        )
        _, reply = _run("gemini", [raw])
        assert reply.usage == Usage(input_tokens=8, output_tokens=5)

    def test_blocked_prompt_finishes_like_unary(self) -> None:
        """A promptFeedback.blockReason chunk ends the stream with the unary finish reason."""
        body = {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.5-flash",
        }
        deltas, reply = _run("gemini", [_sse(body)])
        assert deltas == []
        assert reply == _unary("gemini", body)
        assert reply.finish_reason == "BLOCKED_SAFETY"

    def test_max_tokens_without_parts(self) -> None:
        """A final chunk with a finishReason and no parts (all thoughts) ends cleanly."""
        raw = _sse({"candidates": [{"finishReason": "MAX_TOKENS"}]})
        deltas, reply = _run("gemini", [raw])
        assert (deltas, reply.text, reply.finish_reason) == ([], "", "MAX_TOKENS")

    def test_error_as_one_element_array(self) -> None:
        """An error wrapped in a one-element array (non-SSE stream style) is still typed."""
        raw = _sse([{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}])
        assert isinstance(_stream_error("gemini", raw), OverloadedError)


class TestChatCompletions:
    def test_usage_only_last_chunk_with_empty_choices(self) -> None:
        """OpenAI's usage chunk has `choices: []` and ends nothing by itself."""
        decoder = SSEDecoder()
        parser = _adapter("openai").new_stream_parser(model="m")
        (event,) = decoder.feed(_sse({"choices": [], "usage": CHAT_USAGE}))
        assert parser.feed(event) == []
        assert not parser.done

    def test_glm_reasoning_content_is_not_text(self) -> None:
        """GLM's reasoning_content deltas are thinking, not reply text."""
        deltas, reply = _run("glm", [GLM_REFERENCE])
        assert "Thinking" not in "".join(deltas)
        assert "Thinking" not in reply.text

    @pytest.mark.parametrize("provider", ["openai", "glm"])
    def test_missing_finish_reason_is_unknown(self, provider: str) -> None:
        """A stream whose chunks never name a finish reason reports the unary fallback."""
        raw = _sse({"choices": [{"index": 0, "delta": {"content": "x"}}]}, "[DONE]")
        _, reply = _run(provider, [raw])
        assert reply.finish_reason == "unknown"

    def test_done_without_trailing_blank_line(self) -> None:
        """A `data: [DONE]` the server closed after, without its blank line, still ends it."""
        raw = OPENAI_REFERENCE.removesuffix(b"\n\n")
        _, reply = _run("openai", [raw])
        assert reply.text == "Hi"


class TestAnthropic:
    def test_thinking_and_tool_deltas_are_not_text(self) -> None:
        """thinking_delta, signature_delta and input_json_delta are ignored."""
        deltas = [
            {"type": "thinking_delta", "thinking": "let me think"},
            {"type": "signature_delta", "signature": "sig"},
            {"type": "input_json_delta", "partial_json": '{"a":'},
            {"type": "text_delta", "text": "Answer"},
        ]
        raw = _sse(
            *(
                {"type": "content_block_delta", "index": i, "delta": d}
                for i, d in enumerate(deltas)
            ),
            {"type": "message_stop"},
            event_names=[*["content_block_delta"] * len(deltas), "message_stop"],
        )
        got, reply = _run("anthropic", [raw])
        assert got == ["Answer"]
        assert reply.text == "Answer"

    def test_unknown_events_are_ignored(self) -> None:
        """Event types this version does not know do not fail the stream."""
        raw = _sse(
            {"type": "brand_new_event", "x": 1},
            {"type": "message_stop"},
            event_names=["brand_new_event", "message_stop"],
        )
        deltas, reply = _run("anthropic", [raw])
        assert (deltas, reply.text, reply.finish_reason) == ([], "", "unknown")

    def test_message_delta_input_counts_override_message_start(self) -> None:
        """Cumulative input-side counts repeated in message_delta win over message_start's."""
        raw = _sse(
            {
                "type": "message_start",
                "message": {"usage": {"input_tokens": 10, "output_tokens": 1}},
            },
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {
                    "input_tokens": 10,
                    "cache_read_input_tokens": 90,
                    "output_tokens": 7,
                    "cache_creation_input_tokens": None,
                },
            },
            {"type": "message_stop"},
            event_names=["message_start", "message_delta", "message_stop"],
        )
        _, reply = _run("anthropic", [raw])
        assert reply.usage == Usage(input_tokens=100, output_tokens=7, cached_tokens=90)

    def test_cache_creation_split_only(self) -> None:
        """Cache writes given only as the TTL split are summed, as unary does."""
        usage = {
            "input_tokens": 5,
            "output_tokens": 3,
            "cache_creation": {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60},
        }
        raw = _sse(
            {"type": "message_start", "message": {"usage": usage}},
            {"type": "message_stop"},
            event_names=["message_start", "message_stop"],
        )
        _, reply = _run("anthropic", [raw])
        assert reply.usage == _unary("anthropic", {"content": [], "usage": usage}).usage
        assert reply.usage == Usage(
            input_tokens=105, output_tokens=3, cache_write_tokens=100, cache_write_1h_tokens=60
        )


# ---- request building --------------------------------------------------------------------------


class TestStreamRequests:
    @ALL
    def test_every_registered_adapter_streams(self, provider: str) -> None:
        """Each adapter `adapter_for` offers builds stream requests and stream parsers."""
        assert provider in supported_providers()
        adapter = _adapter(provider)
        assert adapter.build_stream_request(REQUEST, _settings(provider)).method == "POST"
        assert not adapter.new_stream_parser(model="m").done

    @ALL
    def test_body_is_the_unary_body_plus_stream_fields(self, provider: str) -> None:
        """The stream body adds only the streaming switches to the unary body."""
        adapter, settings = _adapter(provider), _settings(provider)
        unary = json.loads(adapter.build_request(REQUEST, settings).body)
        stream = json.loads(adapter.build_stream_request(REQUEST, settings).body)
        extras: dict[str, dict[str, object]] = {
            "gemini": {},
            "openai": {"stream": True, "stream_options": {"include_usage": True}},
            "anthropic": {"stream": True},
            "glm": {"stream": True},  # usage comes on the last chunk unasked
        }
        assert stream == {**unary, **extras[provider]}

    @ALL
    def test_headers_are_the_unary_headers_plus_accept(self, provider: str) -> None:
        """Auth and version headers match the unary request; the stream asks for SSE."""
        adapter, settings = _adapter(provider), _settings(provider)
        unary = dict(adapter.build_request(REQUEST, settings).headers)
        stream = dict(adapter.build_stream_request(REQUEST, settings).headers)
        assert stream == {**unary, "accept": "text/event-stream"}

    @ALL
    def test_key_never_in_the_url_or_body(self, provider: str) -> None:
        """The key travels in a header only (Gemini too: x-goog-api-key, not ?key=)."""
        built = _adapter(provider).build_stream_request(REQUEST, _settings(provider))
        assert KEYS[provider] not in built.url
        assert KEYS[provider].encode() not in built.body
        assert KEYS[provider] in " ".join(built.headers.values())

    @pytest.mark.parametrize(
        ("provider", "url"),
        [
            (
                "gemini",
                "https://generativelanguage.googleapis.com/v1beta/models/"
                "gemini-2.5-flash:streamGenerateContent?alt=sse",
            ),
            ("openai", "https://api.openai.com/v1/chat/completions"),
            ("anthropic", "https://api.anthropic.com/v1/messages"),
            ("glm", "https://open.bigmodel.cn/api/paas/v4/chat/completions"),
        ],
    )
    def test_url(self, provider: str, url: str) -> None:
        """Each provider's streaming endpoint."""
        assert _adapter(provider).build_stream_request(REQUEST, _settings(provider)).url == url

    def test_gemini_stream_url_uses_the_request_model(self) -> None:
        """A per-request model goes into the streaming path, as unary."""
        request = ChatRequest(messages=(Message("user", "x"),), model="gemini-2.5-pro")
        built = _adapter("gemini").build_stream_request(request, _settings("gemini"))
        assert built.url.endswith("/models/gemini-2.5-pro:streamGenerateContent?alt=sse")

    def test_auth_headers(self) -> None:
        """The auth header each provider expects."""

        def headers(provider: str) -> dict[str, str]:
            return dict(
                _adapter(provider).build_stream_request(REQUEST, _settings(provider)).headers
            )

        assert headers("gemini")["x-goog-api-key"] == KEYS["gemini"]
        assert headers("openai")["authorization"] == f"Bearer {KEYS['openai']}"
        assert headers("glm")["authorization"] == f"Bearer {KEYS['glm']}"
        assert headers("anthropic")["x-api-key"] == KEYS["anthropic"]
        assert headers("anthropic")["anthropic-version"] == "2023-06-01"
