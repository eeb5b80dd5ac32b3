"""Google Gemini `generateContent` (v1beta, API-key surface), per shared/reference/gemini.md."""

from __future__ import annotations

import json
import re
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
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply, Usage
from .base import as_int, error_class_for_status, load_json_object

_RETRY_IN_MESSAGE: Final = re.compile(r"retry in ([0-9]+(?:\.[0-9]+)?)\s*s", re.IGNORECASE)
_TYPE_PREFIX: Final = "type.googleapis.com/google.rpc."


class GeminiAdapter:
    name = "gemini"

    def build_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
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
        api_key = settings.api_key.reveal() if settings.api_key else ""
        return HttpRequest(
            method="POST",
            url=f"{settings.base_url}/v1beta/models/{quote(model, safe='.-_')}:generateContent",
            headers={"x-goog-api-key": api_key, "content-type": "application/json"},
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
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


def _is(detail: dict[str, object], kind: str) -> bool:
    return detail.get("@type") == _TYPE_PREFIX + kind


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
