"""OpenAI Chat Completions (`POST /v1/chat/completions`), per shared/reference/openai.md."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ..config import ProviderSettings
from ..errors import (
    AuthenticationError,
    MalformedResponseError,
    NotFoundError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply
from .base import error_class_for_status, load_json_object, parse_retry_after
from .chat_completions import (
    ChatStreamParser,
    build_chat_request,
    build_chat_stream_request,
    error_body,
    header,
    is_error_envelope,
    parse_chat_success,
)

# "Incorrect API key provided: sk-abc***wxyz." echoes part of the key; we never repeat it.
_KEY_ECHO: Final = re.compile(r"(API key provided: )\S+?(?=\.?(?:\s|$))")
_TRY_AGAIN: Final = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION: Final = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class OpenAIAdapter:
    name = "openai"

    def build_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        # `max_tokens` is deprecated and refused by reasoning models (o-series, gpt-5);
        # `max_completion_tokens` is accepted by every current model.
        return build_chat_request(request, settings, max_tokens_field="max_completion_tokens")

    def parse_reply(self, reply: HttpReply, *, model: str) -> ProviderReply:
        data = load_json_object(reply.body) if reply.status == 200 else None
        if reply.status != 200 or (data is not None and is_error_envelope(data)):
            raise self._error(reply)
        if data is None:
            raise MalformedResponseError(
                "the response body is not a JSON object", provider=self.name, status=reply.status
            )
        return parse_chat_success(data, reply, provider=self.name, model=model)

    def build_stream_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        return build_chat_stream_request(
            request, settings, max_tokens_field="max_completion_tokens", include_usage=True
        )

    def new_stream_parser(self, *, model: str) -> ChatStreamParser:
        # An error chunk arrives after HTTP 200: classify it as the same envelope in a 200 body.
        return ChatStreamParser(
            provider=self.name,
            model=model,
            classify=lambda body: self._error(HttpReply(200, {}, body)),
        )

    def _error(self, reply: HttpReply) -> ProviderError:
        status = reply.status
        body = error_body(reply.body)
        if body is None:
            cls = error_class_for_status(status)
            hint = retry_hint(reply.headers, "") if cls is RateLimitError else None
            return cls(
                "no error details in the response",
                provider=self.name,
                status=status,
                retry_after_s=hint,
            )
        message = _KEY_ECHO.sub(r"\1<redacted>", body.message or "no message")
        code = body.code or body.type
        if status == 401 or body.code == "invalid_api_key":
            return AuthenticationError(
                message, provider=self.name, status=status, provider_code=code
            )
        # Two 429s share a status: only `rate_limit_exceeded` passes; `insufficient_quota` is
        # billing, and retrying it only burns the retry budget.
        if "insufficient_quota" in (body.code, body.type):
            return QuotaExhaustedError(
                message, provider=self.name, status=status, provider_code=code
            )
        # In a 200 (an error chunk mid-stream) only the code can say it is a rate limit.
        if status == 429 or body.code == "rate_limit_exceeded":
            return RateLimitError(
                message,
                provider=self.name,
                status=status,
                retry_after_s=retry_hint(reply.headers, message),
                provider_code=code,
            )
        if body.code == "model_not_found":
            return NotFoundError(message, provider=self.name, status=status, provider_code=code)
        if status == 200:  # an error object inside a 200: only its type can tell
            cls = ServerError if body.type == "server_error" else error_class_for_status(400)
            return cls(message, provider=self.name, status=status, provider_code=code)
        return error_class_for_status(status)(
            message, provider=self.name, status=status, provider_code=code
        )


def retry_hint(headers: Mapping[str, str], message: str) -> float | None:
    """Seconds to wait before retrying a 429, from the best hint OpenAI gave.

    In order: `retry-after-ms`, `retry-after` (seconds), "Please try again in 1.5s" in the
    message, then the `x-ratelimit-reset-*` duration of the budget whose remaining count is 0.
    """
    millis = parse_retry_after(header(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    seconds = parse_retry_after(header(headers, "retry-after"))
    if seconds is not None:
        return seconds
    found = _TRY_AGAIN.search(message)
    if found:
        return parse_duration(found.group(1))
    waits = [
        parse_duration(header(headers, f"x-ratelimit-reset-{budget}") or "")
        for budget in ("requests", "tokens")
        if (header(headers, f"x-ratelimit-remaining-{budget}") or "").strip() == "0"
    ]
    known = [wait for wait in waits if wait is not None]
    return max(known) if known else None


def parse_duration(value: str) -> float | None:
    """A Go-style duration (`12ms`, `1s`, `6m0s`, `1m30.5s`) in seconds, or None."""
    value = value.strip()
    if not _DURATION.fullmatch(value):
        return None
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(value))
