"""The Chat Completions wire format that OpenAI and Zhipu GLM share, as pure functions.

Both speak `POST {base}/chat/completions` with `messages`, answer `choices[0].message` and a
`usage` block of `prompt_tokens` / `completion_tokens` with optional `*_details`, and wrap errors
as `{"error": {...}}`. What differs (the output-limit field, how errors are classified) stays in
`openai.py` and `glm.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..config import ProviderSettings
from ..errors import MalformedResponseError
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply, Usage
from .base import as_int, load_json_object

# A reply without a finish reason (never seen on a unary reply, but the field is nullable).
UNKNOWN_FINISH: Final = "unknown"


def build_chat_request(
    request: ChatRequest,
    settings: ProviderSettings,
    *,
    max_tokens_field: str,
    headers: Mapping[str, str] | None = None,
) -> HttpRequest:
    """The `POST {base_url}/chat/completions` request, Bearer-authenticated.

    Args:
        max_tokens_field: the body key that carries `request.max_tokens`.
        headers: extra headers beside `authorization` and `content-type`.
    """
    messages: list[dict[str, object]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend({"role": m.role, "content": m.text} for m in request.messages)
    body: dict[str, object] = {"model": request.model or settings.model, "messages": messages}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.json_mode:
        body["response_format"] = {"type": "json_object"}
    api_key = settings.api_key.reveal() if settings.api_key else ""
    return HttpRequest(
        method="POST",
        url=f"{settings.base_url}/chat/completions",
        headers={
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
            **(headers or {}),
        },
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
    )


def is_error_envelope(data: Mapping[str, object]) -> bool:
    """Whether a 200 body is an error in disguise: an `error` object and no `choices`."""
    return "choices" not in data and isinstance(data.get("error"), dict)


def parse_chat_success(
    data: Mapping[str, object], reply: HttpReply, *, provider: str, model: str
) -> ProviderReply:
    """A 200 `chat.completion` object → `ProviderReply`; no `choices` list is malformed."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise MalformedResponseError(
            "the response has no choices list", provider=provider, status=reply.status
        )
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    return ProviderReply(
        text=_content_text(message.get("content") if isinstance(message, dict) else None),
        finish_reason=str(choice.get("finish_reason") or UNKNOWN_FINISH),
        model=str(data.get("model") or model),
        response_id=str(data["id"]) if data.get("id") else None,
        usage=chat_usage(data.get("usage")),
    )


def chat_usage(raw: object) -> Usage | None:
    """Map a Chat Completions `usage` block; missing `*_details` fields count as 0.

    `prompt_tokens` already includes the cached ones and `completion_tokens` the reasoning
    ones, which is exactly our `Usage` meaning; the parts are clamped to their wholes.
    """
    if not isinstance(raw, dict):
        return None
    prompt = as_int(raw.get("prompt_tokens"))
    completion = as_int(raw.get("completion_tokens"))
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_tokens=min(_detail(raw, "prompt_tokens_details", "cached_tokens"), prompt),
        reasoning_tokens=min(
            _detail(raw, "completion_tokens_details", "reasoning_tokens"), completion
        ),
    )


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What an `{"error": {...}}` body says; every field may be missing."""

    message: str | None
    code: str | None
    type: str | None


def error_body(body: bytes) -> ErrorBody | None:
    """The error envelope of a body, or None when it has none we can read.

    Accepts the OpenAI/GLM `{"error": {...}}` shape (also when wrapped Anthropic-style with a
    top-level `"type": "error"`) and the older Zhipu `{"code": ..., "msg": ...}` shape.
    """
    data = load_json_object(body)
    if data is None:
        return None
    error = data.get("error")
    if isinstance(error, dict):
        return ErrorBody(
            _text(error.get("message")), _text(error.get("code")), _text(error.get("type"))
        )
    if isinstance(error, str):  # some gateways in front of these APIs answer {"error": "..."}
        return ErrorBody(error or None, None, None)
    if "code" in data and ("msg" in data or "message" in data):
        message = _text(data.get("msg")) or _text(data.get("message"))
        return ErrorBody(message, _text(data.get("code")), None)
    return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by lower-case name, whatever case the mapping uses."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, found in headers.items():
        if key.lower() == name:
            return found
    return None


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content-part arrays, as some compatible servers answer
        return "".join(
            str(part["text"])
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and "text" in part
        )
    return ""  # null (a refusal or a tool call) or absent


def _detail(usage: Mapping[str, object], block: str, field: str) -> int:
    details = usage.get(block)
    return as_int(details.get(field)) if isinstance(details, dict) else 0


def _text(value: object) -> str | None:
    # GLM's business code is a string but some deployments send a number; both read the same.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str | int | float):
        return str(value) or None
    return None
