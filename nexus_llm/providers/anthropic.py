"""Anthropic Messages API (`POST /v1/messages`), per shared/reference/anthropic.md.

The `anthropic-version` header is pinned to 2023-06-01: version 2026-10-21 answers 400 to any
request carrying `temperature`, `top_p` or `top_k`, and callers of this library set temperature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ..config import ProviderSettings
from ..errors import (
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
from ..observe.jsonl import compact_json
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply, Usage
from .base import (
    as_int,
    error_class_for_status,
    event_json,
    load_json_object,
    parse_retry_after,
)
from .sse import SSEEvent

API_VERSION: Final = "2023-06-01"
# The API requires max_tokens; 1024 is the value of the reference's and Anthropic's examples.
DEFAULT_MAX_TOKENS: Final = 1024
# The Messages API has no JSON mode (no response_format); an instruction is the stateless
# stand-in, since prefilling "{" would need parse_reply to know the request to put it back.
JSON_INSTRUCTION: Final = "Reply with one valid JSON object only: no prose, no Markdown fences."
SPEND_LIMIT_CODE: Final = "enforced_spend_limit_reached"

_BY_TYPE: Final[Mapping[str, type[ProviderError]]] = {
    "invalid_request_error": BadRequestError,
    "authentication_error": AuthenticationError,
    "billing_error": QuotaExhaustedError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "conflict_error": ServerError,
    "request_too_large": BadRequestError,
    "rate_limit_error": RateLimitError,
    "api_error": ServerError,
    "timeout_error": ServerError,
    "overloaded_error": OverloadedError,
}


class AnthropicAdapter:
    name = "anthropic"

    def build_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        return _http(settings, _body(request, settings), {})

    def build_stream_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        body = _body(request, settings)
        body["stream"] = True
        return _http(settings, body, {"accept": "text/event-stream"})

    def new_stream_parser(self, *, model: str) -> AnthropicStreamParser:
        return AnthropicStreamParser(model=model, classify=self._stream_error)

    def parse_reply(self, reply: HttpReply, *, model: str) -> ProviderReply:
        if reply.status != 200:
            raise self._error(reply)
        data = load_json_object(reply.body)
        if data is None:
            raise MalformedResponseError(
                "the response body is not a JSON object", provider=self.name, status=reply.status
            )
        if data.get("type") == "error":
            raise self._error(reply)
        stop_reason = data.get("stop_reason")
        return ProviderReply(
            text=_text(data.get("content")),
            finish_reason=str(stop_reason) if stop_reason else "unknown",
            model=str(data.get("model") or model),
            response_id=str(data["id"]) if data.get("id") else None,
            usage=_usage(data.get("usage")),
        )

    def _error(self, reply: HttpReply) -> ProviderError:
        data = load_json_object(reply.body)
        error = data.get("error") if data else None
        hint = _retry_after(reply.headers)
        if not isinstance(error, dict):
            # An edge proxy (a Cloudflare 413, a gateway 502) answers without the envelope.
            cls = error_class_for_status(reply.status)
            return cls(
                "no error details in the response",
                provider=self.name,
                status=reply.status,
                retry_after_s=hint if cls.retryable else None,
            )
        error_type = str(error.get("type") or "")
        message = str(error.get("message") or "no message")
        details = error.get("details")
        code = details.get("error_code") if isinstance(details, dict) else None
        if code == SPEND_LIMIT_CODE:
            # The monthly tier cap: no retry-after, and nothing helps until next month.
            return QuotaExhaustedError(
                message, provider=self.name, status=reply.status, provider_code=SPEND_LIMIT_CODE
            )
        # The set of error types may grow: an unknown one falls back to the HTTP status.
        cls = _BY_TYPE.get(error_type) or error_class_for_status(reply.status)
        return cls(
            message,
            provider=self.name,
            status=reply.status,
            retry_after_s=hint if cls.retryable else None,
            provider_code=error_type or None,
        )

    def _stream_error(self, data: str) -> ProviderError:
        # An `error` event follows HTTP 200: its `error.type` decides, as in a 200 error body.
        return self._error(HttpReply(200, {}, data.encode()))


class AnthropicStreamParser:
    """One streamed Messages reply, from its named events.

    `message_start` carries the id, model and input-side usage; `content_block_delta` text
    deltas are the text (thinking, signature and input_json deltas are not); `message_delta`
    carries the stop reason and the cumulative output count (newer API versions repeat the
    input-side counts there too: the latest non-null value of each field wins); `message_stop`
    ends it; `ping` and event types this version does not know are ignored.
    """

    def __init__(self, *, model: str, classify: Callable[[str], ProviderError]) -> None:
        self._model = model
        self._classify = classify
        self._text: list[str] = []
        self._stop: str | None = None
        self._id: str | None = None
        self._usage: dict[str, object] | None = None
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[str]:
        kind = event.event
        if kind == "ping":
            return []
        data = event_json(event.data, provider="anthropic")
        kind = kind or str(data.get("type") or "")
        if kind == "error":
            raise self._classify(event.data)
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                if message.get("id"):
                    self._id = str(message["id"])
                if message.get("model"):
                    self._model = str(message["model"])
                self._merge_usage(message.get("usage"))
        elif kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    self._text.append(text)
                    return [text]
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop = str(delta["stop_reason"])
            self._merge_usage(data.get("usage"))
        elif kind == "message_stop":
            self._done = True
        return []

    def usage_so_far(self) -> Usage | None:
        return _usage(self._usage)

    def finish(self) -> ProviderReply:
        if not self._done:
            raise MalformedResponseError(
                "the stream ended before its message_stop event (truncated)", provider="anthropic"
            )
        return ProviderReply(
            text="".join(self._text),
            finish_reason=self._stop or "unknown",
            model=self._model,
            response_id=self._id,
            usage=_usage(self._usage),
        )

    def _merge_usage(self, raw: object) -> None:
        if not isinstance(raw, dict):
            return
        merged = self._usage if self._usage is not None else {}
        merged.update((key, value) for key, value in raw.items() if value is not None)
        self._usage = merged


def _body(request: ChatRequest, settings: ProviderSettings) -> dict[str, object]:
    body: dict[str, object] = {
        "model": request.model or settings.model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
    }
    system = request.system
    if request.json_mode:
        system = f"{system}\n\n{JSON_INSTRUCTION}" if system else JSON_INSTRUCTION
    if system:
        body["system"] = system
    body["messages"] = [{"role": m.role, "content": m.text} for m in request.messages]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def _http(
    settings: ProviderSettings, body: dict[str, object], headers: Mapping[str, str]
) -> HttpRequest:
    api_key = settings.api_key.reveal() if settings.api_key else ""
    return HttpRequest(
        method="POST",
        url=f"{settings.base_url.rstrip('/')}/v1/messages",
        headers={
            "x-api-key": api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            **headers,
        },
        body=compact_json(body),
    )


def _text(content: object) -> str:
    """The text blocks joined; thinking, redacted_thinking and tool_use blocks are not text."""
    if not isinstance(content, list):
        return ""
    return "".join(
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )


def _usage(raw: object) -> Usage | None:
    """Map `usage`: Anthropic's input_tokens is only the uncached part of the prompt."""
    if not isinstance(raw, dict):
        return None
    uncached = as_int(raw.get("input_tokens"))
    read = as_int(raw.get("cache_read_input_tokens"))
    write = as_int(raw.get("cache_creation_input_tokens"))
    split = raw.get("cache_creation")
    if raw.get("cache_creation_input_tokens") is None and isinstance(split, dict):
        write = sum(as_int(count) for count in split.values())
    # The TTL split of those writes: a 1-hour write is billed at 2x input, a 5-minute at 1.25x.
    one_hour = as_int(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
    output = as_int(raw.get("output_tokens"))
    details = raw.get("output_tokens_details")
    thinking = as_int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=uncached + read + write,
        output_tokens=output,
        cached_tokens=read,
        reasoning_tokens=min(thinking, output),
        cache_write_tokens=write,
        cache_write_1h_tokens=min(one_hour, write),
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms` (which the official SDK reads first), else `retry-after` in seconds."""
    millis = parse_retry_after(_header(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    return parse_retry_after(_header(headers, "retry-after"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # httpx.Headers ignore case already; a plain dict (canned replies) may not.
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)
