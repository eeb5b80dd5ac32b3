"""Streaming over real HTTP: framing, chunk boundaries, equality with unary, and stream faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from nexus_llm.emulator import Emulator, FaultKind, emulated_providers
from nexus_llm.emulator._sse import split_words

PROMPT = "Summarise: the disk is full."
PROVIDERS = ["gemini", "openai", "anthropic", "glm"]
GEMINI_STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
# The in-stream error each provider's stream_error sends, by its distinguishing field.
IN_STREAM_ERRORS = {
    "gemini": ("status", "UNAVAILABLE"),
    "openai": ("type", "server_error"),
    "anthropic": ("type", "overloaded_error"),
    "glm": ("code", "500"),
}


@dataclass(frozen=True)
class Sse:
    """One parsed Server-Sent Event."""

    name: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    """An HTTP client on the emulator's root URL, closed after the test."""
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as client:
        yield client


def request_for(
    emulator: Emulator, provider: str, *, stream: bool = True, **extra: Any
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The path, headers and body of a `provider` request for PROMPT, streamed or not."""
    messages = [{"role": "user", "content": PROMPT}]
    key = emulator.key_for(provider)
    if provider == "gemini":
        path = f"{GEMINI_STREAM}?alt=sse" if stream else GEMINI_STREAM.replace("stream", "g")
        path = path.replace(":gGenerateContent", ":generateContent")
        body: dict[str, Any] = {"contents": [{"parts": [{"text": PROMPT}]}], **extra}
        return path, {"x-goog-api-key": key}, body
    flag: dict[str, Any] = {"stream": True} if stream else {}
    if provider == "openai":
        if stream:
            flag["stream_options"] = {"include_usage": True}
        body = {"model": "gpt-4o-mini", "messages": messages, **flag, **extra}
        return "/v1/chat/completions", {"authorization": f"Bearer {key}"}, body
    if provider == "glm":
        body = {"model": "glm-4.5-flash", "messages": messages, **flag, **extra}
        return "/api/paas/v4/chat/completions", {"authorization": f"Bearer {key}"}, body
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 256, "messages": messages, **flag, **extra}
    return "/v1/messages", headers, body


def parse_sse(raw: bytes) -> list[Sse]:
    """Split an SSE body into events, accepting LF and CRLF line ends."""
    text = raw.decode("utf-8").replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append(Sse(name, "\n".join(data)))
    return events


def stream(http: httpx.Client, emulator: Emulator, provider: str, **extra: Any) -> list[Sse]:
    """One complete streamed request, as parsed events."""
    path, headers, body = request_for(emulator, provider, **extra)
    response = http.post(path, headers=headers, json=body)
    assert response.status_code == 200, response.text
    return parse_sse(response.content)


def read_broken(http: httpx.Client, emulator: Emulator, provider: str) -> bytes:
    """The bytes of a 200 stream that ends without finishing its HTTP body."""
    path, headers, body = request_for(emulator, provider)
    received = bytearray()
    with http.stream("POST", path, headers=headers, json=body) as response:
        assert response.status_code == 200
        pieces = response.iter_raw()
        with pytest.raises(httpx.RemoteProtocolError):
            _drain(pieces, received)
    return bytes(received)


def _drain(pieces: Iterator[bytes], into: bytearray) -> None:
    for piece in pieces:
        into += piece


def unary(http: httpx.Client, emulator: Emulator, provider: str, **extra: Any) -> dict[str, Any]:
    """The unary JSON answer to the same prompt."""
    path, headers, body = request_for(emulator, provider, stream=False, **extra)
    response = http.post(path, headers=headers, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def payloads(events: list[Sse]) -> list[Any]:
    return [event.json() for event in events if event.data != "[DONE]"]


def streamed_text(provider: str, events: list[Sse]) -> str:
    """The text of a stream: its text deltas, joined."""
    chunks = payloads(events)
    if provider == "gemini":
        return "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])
    if provider == "anthropic":
        return "".join(
            c["delta"]["text"]
            for c in chunks
            if c["type"] == "content_block_delta" and c["delta"]["type"] == "text_delta"
        )
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def streamed_usage(provider: str, events: list[Sse]) -> Any:
    """The usage of a stream, read the way each provider's documentation says to."""
    chunks = payloads(events)
    if provider == "gemini":
        return chunks[-1].get("usageMetadata")
    if provider == "anthropic":
        usage = dict(chunks[0]["message"].get("usage") or {})
        delta = next(c for c in chunks if c["type"] == "message_delta")
        if "usage" not in delta and not usage:
            return None
        usage.update(delta.get("usage", {}))
        return usage
    with_usage = [c for c in chunks if c.get("usage")]
    return with_usage[-1]["usage"] if with_usage else None


def unary_text(provider: str, body: dict[str, Any]) -> str:
    if provider == "gemini":
        return str(body["candidates"][0]["content"]["parts"][0]["text"])
    if provider == "anthropic":
        return "".join(b["text"] for b in body["content"] if b["type"] == "text")
    return str(body["choices"][0]["message"]["content"])


def unary_usage(provider: str, body: dict[str, Any]) -> Any:
    return body["usageMetadata" if provider == "gemini" else "usage"]


def has_end_marker(provider: str, events: list[Sse]) -> bool:
    """Whether the stream ended the way a finished stream of `provider` ends."""
    if not events:
        return False
    if provider == "gemini":
        last = events[-1].json()
        return "finishReason" in last.get("candidates", [{}])[0]
    if provider == "anthropic":
        return events[-1].name == "message_stop"
    return events[-1].data == "[DONE]"


class TestFraming:
    """Each provider streams its own wire format over chunked HTTP/1.1."""

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_headers_say_event_stream_and_chunked(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """A stream is a 200 text/event-stream with chunked encoding and no Content-Length."""
        path, headers, body = request_for(emulator, provider)
        response = http.post(path, headers=headers, json=body)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_every_event_arrives_in_its_own_reads(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """Events are written one by one, so no read carries two and there are several reads."""
        path, headers, body = request_for(emulator, provider)
        with http.stream("POST", path, headers=headers, json=body) as response:
            pieces = list(response.iter_raw())
        events = parse_sse(b"".join(pieces))
        assert len(events) > 3
        assert len(pieces) >= len(events)
        assert all(piece.count(b"data: ") <= 1 for piece in pieces)

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_text_and_usage_equal_the_unary_answer(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """Joined deltas are the unary text, word by word, and the usage is the unary usage."""
        emulator.configure(provider, thoughts_tokens=20, cached_tokens=2)
        events = stream(http, emulator, provider)
        answer = unary(http, emulator, provider)
        text = streamed_text(provider, events)
        assert (
            text == unary_text(provider, answer) == f"Emulated {provider} reply to 7 prompt tokens."
        )
        assert streamed_usage(provider, events) == unary_usage(provider, answer)
        assert has_end_marker(provider, events)

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_a_cut_reply_streams_the_same_cut(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """An output limit cuts the stream exactly where it cuts the unary reply."""
        limit = {
            "gemini": {"generationConfig": {"maxOutputTokens": 3}},
            "openai": {"max_completion_tokens": 3},
            "glm": {"max_tokens": 3},
            "anthropic": {"max_tokens": 3},
        }[provider]
        events = stream(http, emulator, provider, **limit)
        answer = unary(http, emulator, provider, **limit)
        assert (
            streamed_text(provider, events)
            == unary_text(provider, answer)
            == "Emulated "[:-1] + " " + provider
            if False
            else streamed_text(provider, events) == unary_text(provider, answer)
        )

    def test_gemini_sse_has_no_names_no_done_and_crlf(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """Gemini's events are bare data lines ended by CRLF CRLF; the last has finishReason."""
        path, headers, body = request_for(emulator, "gemini")
        raw = http.post(path, headers=headers, json=body).content
        assert raw.endswith(b"\r\n\r\n")
        assert b"event:" not in raw
        assert b"[DONE]" not in raw
        chunks = payloads(parse_sse(raw))
        assert [c["candidates"][0].get("finishReason") for c in chunks][-2:] == [None, "STOP"]
        # usageMetadata rides on every chunk, cumulative: the prompt until the last one.
        assert all(c["usageMetadata"]["totalTokenCount"] == 7 for c in chunks[:-1])
        assert len({c["responseId"] for c in chunks}) == 1

    def test_gemini_without_alt_sse_streams_a_json_array(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """Without alt=sse, streamGenerateContent streams one JSON array of the same chunks."""
        path, headers, body = request_for(emulator, "gemini")
        response = http.post(path.removesuffix("?alt=sse"), headers=headers, json=body)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.content.startswith(b"[{")
        assert b"},\r\n{" in response.content
        chunks = response.json()
        assert len(chunks) > 1
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert text == "Emulated gemini reply to 7 prompt tokens."

    def test_openai_usage_chunk_only_when_asked(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """Without stream_options.include_usage there is no usage at all; with it, a last
        chunk with empty choices carries it and every other chunk says usage null."""
        plain = stream(http, emulator, "openai", stream_options={"include_usage": False})
        assert all("usage" not in c for c in payloads(plain))
        asked = payloads(stream(http, emulator, "openai"))
        assert all(c["usage"] is None for c in asked[:-1])
        assert asked[-1]["choices"] == []
        assert asked[-1]["usage"]["total_tokens"] == 15
        assert all(c["object"] == "chat.completion.chunk" for c in asked)
        assert asked[0]["choices"][0]["delta"]["role"] == "assistant"
        assert asked[-2]["choices"][0]["finish_reason"] == "stop"

    def test_glm_usage_rides_on_the_last_data_chunk(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """GLM puts usage on the finishing chunk, with reasoning first when there is some."""
        emulator.configure("glm", thoughts_tokens=5, cached_tokens=0)
        events = stream(http, emulator, "glm")
        assert events[-1].data == "[DONE]"
        chunks = payloads(events)
        assert chunks[0]["choices"][0]["delta"]["reasoning_content"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["usage"]["completion_tokens"] == 8 + 5
        assert all("usage" not in c for c in chunks[:-1])

    def test_anthropic_events_come_in_the_documented_order(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """message_start, block start, ping, deltas, block stop, message_delta, message_stop."""
        events = stream(http, emulator, "anthropic")
        names = [event.name for event in events]
        words = len(split_words("Emulated anthropic reply to 7 prompt tokens."))
        assert names == [
            "message_start",
            "content_block_start",
            "ping",
            *["content_block_delta"] * words,
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert all(event.json()["type"] == event.name for event in events)
        start = events[0].json()["message"]
        assert (start["content"], start["stop_reason"]) == ([], None)

    def test_anthropic_thinking_streams_as_its_own_block(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """With thinking tokens, block 0 is thinking (with a signature) and block 1 the text."""
        emulator.configure("anthropic", thoughts_tokens=4, cached_tokens=0)
        chunks = payloads(stream(http, emulator, "anthropic"))
        starts = [c["content_block"]["type"] for c in chunks if c["type"] == "content_block_start"]
        assert starts == ["thinking", "text"]
        kinds = {c["delta"]["type"] for c in chunks if c["type"] == "content_block_delta"}
        assert kinds == {"thinking_delta", "signature_delta", "text_delta"}

    def test_a_finished_stream_keeps_the_connection(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """After a complete stream the same connection serves the next request."""
        path, headers, body = request_for(emulator, "openai")
        first = http.post(path, headers=headers, json=body)
        second = http.post(path, headers=headers, json=body)
        ports = {
            r.extensions["network_stream"].get_extra_info("client_addr") for r in (first, second)
        }
        assert len(ports) == 1


class TestStreamFaults:
    """Faults on stream requests: before the stream, inside it, and counted."""

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_an_error_fault_answers_like_unary(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """An error fault is the unary status and JSON error body, before any stream starts."""
        path, headers, body = request_for(emulator, provider)
        emulator.inject(provider, "rate_limit", times=1)
        streamed = http.post(path, headers=headers, json=body)
        path, headers, body = request_for(emulator, provider, stream=False)
        emulator.inject(provider, "rate_limit", times=1)
        plain = http.post(path, headers=headers, json=body)
        assert streamed.status_code == plain.status_code == 429
        assert streamed.headers["content-type"].startswith("application/json")
        assert streamed.json().keys() == plain.json().keys()
        assert "error" in streamed.json()
        assert emulator.request_count(provider) == 2

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_stream_cut_ends_without_the_end_marker(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """stream_cut sends whole events, then a clean end of body without the stream's end."""
        emulator.inject(provider, FaultKind.STREAM_CUT, times=1)
        path, headers, body = request_for(emulator, provider)
        response = http.post(path, headers=headers, json=body)
        assert response.status_code == 200
        assert response.headers["connection"] == "close"
        events = parse_sse(response.content)
        assert response.content.replace(b"\r\n", b"\n").endswith(b"\n\n"), "whole events"
        assert events
        assert not has_end_marker(provider, events)
        assert streamed_text(provider, events), "some text arrived before the cut"
        assert emulator.request_count(provider) == 1
        assert len(stream(http, emulator, provider)) > len(events)

    def test_gemini_stream_cut_leaves_the_json_array_open(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """Without alt=sse a cut stream is an array that never gets its closing bracket."""
        emulator.inject("gemini", "stream_cut", times=1)
        path, headers, body = request_for(emulator, "gemini")
        raw = http.post(path.removesuffix("?alt=sse"), headers=headers, json=body).content
        assert raw.startswith(b"[{")
        assert raw.endswith(b"}")
        assert json.loads(raw + b"]")[0]["candidates"]

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_stream_error_sends_the_providers_error_event(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """stream_error sends some events, then the provider's in-stream error, and ends."""
        emulator.inject(provider, "stream_error", times=1)
        events = stream(http, emulator, provider)
        assert streamed_text(provider, events[:-1]), "some text arrived before the error"
        last = events[-1]
        field, value = IN_STREAM_ERRORS[provider]
        error = last.json()["error"]
        assert error[field] == value
        if provider == "anthropic":
            assert last.name == "error"
            assert last.json()["type"] == "error"
        else:
            assert last.name is None
        assert not any(e.data == "[DONE]" or e.name == "message_stop" for e in events)

    def test_gemini_stream_error_in_a_json_array_is_its_last_element(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """Without alt=sse the in-stream error is a last array element, and the array closes."""
        emulator.inject("gemini", "stream_error", times=1)
        path, headers, body = request_for(emulator, "gemini")
        chunks = http.post(path.removesuffix("?alt=sse"), headers=headers, json=body).json()
        assert chunks[-1]["error"]["code"] == 503
        assert "candidates" in chunks[0]

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_omit_usage_leaves_every_usage_out(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """omit_usage streams the text with no usage fields and no usage chunk."""
        emulator.inject(provider, "omit_usage", times=1)
        events = stream(http, emulator, provider)
        assert streamed_text(provider, events) == f"Emulated {provider} reply to 7 prompt tokens."
        assert streamed_usage(provider, events) is None
        assert all("usage" not in e.data.lower() for e in events)
        assert has_end_marker(provider, events)

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_truncated_stops_mid_event(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """truncated stops halfway through the stream's bytes, inside an event."""
        emulator.inject(provider, "truncated", times=1)
        received = read_broken(http, emulator, provider)
        assert received
        assert not received.replace(b"\r\n", b"\n").endswith(b"\n\n")

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_malformed_json_breaks_one_event(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """malformed_json completes the stream, but one event's data is not JSON."""
        emulator.inject(provider, "malformed_json", times=1)
        events = stream(http, emulator, provider)
        broken = []
        for event in events:
            try:
                event.json()
            except json.JSONDecodeError:
                broken.append(event)
        assert [e.data for e in broken if e.data != "[DONE]"] != []
        assert len([e for e in broken if e.data != "[DONE]"]) == 1
        assert has_end_marker(provider, events) or provider == "gemini"

    @pytest.mark.parametrize("kind", ["reset", "timeout"])
    def test_wire_faults_hit_stream_requests(self, emulator: Emulator, kind: str) -> None:
        """reset drops a stream request with no response; timeout never answers it."""
        emulator.inject("openai", kind, times=1)
        path, headers, body = request_for(emulator, "openai")
        with (
            httpx.Client(base_url=emulator.base_url, timeout=0.3) as client,
            pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout)),
        ):
            client.post(path, headers=headers, json=body)
        assert emulator.request_count("openai") == 1

    def test_slow_still_streams_everything(self, http: httpx.Client, emulator: Emulator) -> None:
        """slow delays the first byte; the stream that follows is whole."""
        emulator.inject("anthropic", "slow", times=1, delay_s=0.05)
        events = stream(http, emulator, "anthropic")
        assert has_end_marker("anthropic", events)

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_stream_kinds_on_unary_requests(
        self, http: httpx.Client, emulator: Emulator, provider: str
    ) -> None:
        """On a unary request stream_error is that error's HTTP answer, stream_cut a truncation."""
        path, headers, body = request_for(emulator, provider, stream=False)
        emulator.inject(provider, "stream_error", times=1)
        response = http.post(path, headers=headers, json=body)
        assert response.status_code >= 500
        field, value = IN_STREAM_ERRORS[provider]
        assert response.json()["error"][field] == value
        emulator.inject(provider, "stream_cut", times=1)
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(path, headers=headers, json=body)

    def test_stream_requests_are_counted(self, http: httpx.Client, emulator: Emulator) -> None:
        """Every stream request counts once per provider, faulted or not."""
        for provider in emulated_providers():
            stream(http, emulator, provider)
        emulator.inject("glm", "stream_error", times=1)
        stream(http, emulator, "glm")
        assert emulator.stats()["requests"] == {"gemini": 1, "openai": 1, "anthropic": 1, "glm": 2}

    def test_stream_faults_over_the_control_endpoint(
        self, http: httpx.Client, emulator: Emulator
    ) -> None:
        """stream_cut and stream_error can be injected over HTTP like any other kind."""
        for kind in ("stream_cut", "stream_error"):
            fault = {"provider": "openai", "kind": kind, "times": 1}
            response = http.post("/_emulator/faults", json=fault)
            assert response.status_code == 200
            assert response.json()["kind"] == kind
        assert [f["kind"] for f in emulator.stats()["faults"]] == ["stream_cut", "stream_error"]
