"""Google Gemini `generateContent` (v1beta, API-key surface), per shared/reference/gemini.md."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Final
from urllib.parse import quote

from ..config import ProviderSettings
from ..errors import (
    AuthenticationError,
    MalformedResponseError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitError,
)
from ..observe.jsonl import compact_json
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply, Usage
from .base import as_int, error_class_for_status, load_json_object
from .sse import SSEEvent

_RETRY_IN_MESSAGE: Final = re.compile(r"retry in ([0-9]+(?:\.[0-9]+)?)\s*s", re.IGNORECASE)
_TYPE_PREFIX: Final = "type.googleapis.com/google.rpc."
# google.rpc.Code name → the HTTP status Google pairs it with, for an in-stream error w/o code.
_STATUS_BY_NAME: Final[dict[str, int]] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class GeminiAdapter:
    name = "gemini"

    def build_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        return self._http(request, settings, ":generateContent", {})

    def build_stream_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        # Without alt=sse the stream is one incrementally sent JSON array, not event lines.
        return self._http(
            request,
            settings,
            ":streamGenerateContent?alt=sse",
            {"accept": "text/event-stream"},
        )

    def new_stream_parser(self, *, model: str) -> GeminiStreamParser:
        return GeminiStreamParser(model=model, classify=self._stream_error)

    def _http(
        self,
        request: ChatRequest,
        settings: ProviderSettings,
        method: str,
        headers: dict[str, str],
    ) -> HttpRequest:
        model = request.model or settings.model
        body: dict[str, object] = {
            "contents": [
                {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.text}]}
                for m in request.messages
            ]
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        config: dict[str, object] = {}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.json_mode:
            config["responseMimeType"] = "application/json"
        if config:
            body["generationConfig"] = config
        # The key travels in a header, never in the URL (`?key=` would land in access logs).
        api_key = settings.api_key.reveal() if settings.api_key else ""
        return HttpRequest(
            method="POST",
            url=f"{settings.base_url}/v1beta/models/{_model_path(model)}{method}",
            headers={"x-goog-api-key": api_key, "content-type": "application/json", **headers},
            body=compact_json(body),
        )

    def parse_reply(self, reply: HttpReply, *, model: str) -> ProviderReply:
        if reply.status != 200:
            raise self._error(reply)
        data = load_json_object(reply.body)
        if data is None:
            raise MalformedResponseError(
                "the response body is not a JSON object", provider=self.name, status=reply.status
            )
        return ProviderReply(
            text=_candidate_text(data),
            finish_reason=_finish_reason(data),
            model=str(data.get("modelVersion") or model),
            response_id=str(data["responseId"]) if data.get("responseId") else None,
            usage=_usage(data.get("usageMetadata")),
        )

    def _error(self, reply: HttpReply) -> ProviderError:
        data = load_json_object(reply.body)
        # Non-streaming stream errors can arrive as a one-element array; accept that too.
        if data is None:
            try:
                parsed = json.loads(reply.body)
            except (ValueError, UnicodeDecodeError):
                parsed = None
            if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
                data = parsed[0]
        error = data.get("error") if data else None
        if not isinstance(error, dict):
            cls = error_class_for_status(reply.status)
            return cls("no error details in the response", provider=self.name, status=reply.status)
        message = str(error.get("message") or "no message")
        status_name = str(error.get("status") or "")
        raw_details = error.get("details")
        details = (
            [d for d in raw_details if isinstance(d, dict)] if isinstance(raw_details, list) else []
        )
        reasons = {str(d.get("reason")) for d in details if _is(d, "ErrorInfo")}
        kwargs = {
            "provider": self.name,
            "status": reply.status,
            "provider_code": status_name or None,
        }
        if "API_KEY_INVALID" in reasons or reply.status == 401:
            return AuthenticationError(message, **kwargs)  # type: ignore[arg-type]
        if reply.status == 429:
            if _is_daily_quota(details):
                return QuotaExhaustedError(message, **kwargs)  # type: ignore[arg-type]
            return RateLimitError(
                message,
                retry_after_s=_retry_delay(details, message),
                **kwargs,  # type: ignore[arg-type]
            )
        return error_class_for_status(reply.status)(message, **kwargs)  # type: ignore[arg-type]

    def _stream_error(self, data: dict[str, object]) -> ProviderError:
        """An error object inside the stream, classified as the same body with its own code."""
        error = data.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        status_name = str(error.get("status") or "") if isinstance(error, dict) else ""
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
            status = code
        else:
            # Failing after the stream began, with no code we know, is the server's failure.
            status = _STATUS_BY_NAME.get(status_name, 500)
        return self._error(HttpReply(status, {}, json.dumps(data).encode()))


class GeminiStreamParser:
    """One `streamGenerateContent?alt=sse` reply: each event a whole GenerateContentResponse.

    Text is the per-chunk delta of candidate 0 (thought parts excluded, as unary); usageMetadata
    is cumulative, so the last one wins; the chunk with a finishReason ends the reply, and so
    does a prompt block (promptFeedback.blockReason, no candidates), reported as unary does.
    Gemini has no other end marker: the connection closes.
    """

    def __init__(self, *, model: str, classify: Callable[[dict[str, object]], ProviderError]):
        self._model = model
        self._classify = classify
        self._text: list[str] = []
        self._finish: str | None = None
        self._id: str | None = None
        self._usage: Usage | None = None

    @property
    def done(self) -> bool:
        return self._finish is not None

    def feed(self, event: SSEEvent) -> list[str]:
        data = _stream_chunk(event.data)
        if data.get("error") is not None:
            raise self._classify(data)
        if data.get("modelVersion"):
            self._model = str(data["modelVersion"])
        if data.get("responseId"):
            self._id = str(data["responseId"])
        usage = _usage(data.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        if _has_finish(data):
            self._finish = _finish_reason(data)
        text = _candidate_text(data)
        if not text:
            return []
        self._text.append(text)
        return [text]

    def usage_so_far(self) -> Usage | None:
        return self._usage

    def finish(self) -> ProviderReply:
        if self._finish is None:
            raise MalformedResponseError(
                "the stream ended before a chunk with a finishReason (truncated)",
                provider="gemini",
            )
        return ProviderReply(
            text="".join(self._text),
            finish_reason=self._finish,
            model=self._model,
            response_id=self._id,
            usage=self._usage,
        )


def _stream_chunk(data: str) -> dict[str, object]:
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    # An error can come as the one-element array the non-SSE stream uses.
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        raise MalformedResponseError("a stream event is not a JSON object", provider="gemini")
    return value


def _has_finish(data: dict[str, object]) -> bool:
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return bool(candidates[0].get("finishReason"))
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _is(detail: dict[str, object], kind: str) -> bool:
    return detail.get("@type") == _TYPE_PREFIX + kind


@functools.lru_cache(maxsize=256)
def _model_path(model: str) -> str:
    """The model's name as a URL path segment (a few names, quoted once each)."""
    return quote(model, safe=".-_")


def _candidate_text(data: dict[str, object]) -> str:
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        return ""
    content = candidates[0].get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        # MAX_TOKENS on a thinking model can leave no parts at all.
        return ""
    return "".join(
        str(p["text"])
        for p in parts
        if isinstance(p, dict) and "text" in p and not p.get("thought")
    )


def _finish_reason(data: dict[str, object]) -> str:
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return str(candidates[0].get("finishReason") or "FINISH_REASON_UNSPECIFIED")
    feedback = data.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        return f"BLOCKED_{feedback['blockReason']}"
    return "FINISH_REASON_UNSPECIFIED"


def _usage(raw: object) -> Usage | None:
    """Map usageMetadata; zero-valued fields are omitted by the API, so missing means 0."""
    if not isinstance(raw, dict):
        return None
    prompt = as_int(raw.get("promptTokenCount")) + as_int(raw.get("toolUsePromptTokenCount"))
    thoughts = as_int(raw.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=prompt,
        output_tokens=as_int(raw.get("candidatesTokenCount")) + thoughts,
        cached_tokens=min(as_int(raw.get("cachedContentTokenCount")), prompt),
        reasoning_tokens=thoughts,
    )


def _retry_delay(details: list[dict[str, object]], message: str) -> float | None:
    for detail in details:
        if _is(detail, "RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return max(float(delay[:-1]), 0.0)
                except ValueError:
                    break
    found = _RETRY_IN_MESSAGE.search(message)
    return float(found.group(1)) if found else None


def _is_daily_quota(details: list[dict[str, object]]) -> bool:
    for detail in details:
        if not _is(detail, "QuotaFailure"):
            continue
        violations = detail.get("violations")
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict) and "PerDay" in str(violation.get("quotaId", "")):
                return True
    return False
