"""The Chat Completions wire format that OpenAI and Zhipu GLM share, as pure functions.

Both speak `POST {base}/chat/completions` with `messages`, answer `choices[0].message` and a
`usage` block of `prompt_tokens` / `completion_tokens` with optional `*_details`, and wrap errors
as `{"error": {...}}`. What differs (the output-limit field, how errors are classified) stays in
`openai.py` and `glm.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from ..config import ProviderSettings
from ..errors import MalformedResponseError, ProviderError
from ..observe.jsonl import compact_json
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply, Usage
from .base import as_int, event_json, load_json_object
from .sse import SSEEvent

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
    body = _chat_body(request, settings, max_tokens_field=max_tokens_field)
    return _chat_http(settings, body, headers or {})


def build_chat_stream_request(
    request: ChatRequest,
    settings: ProviderSettings,
    *,
    max_tokens_field: str,
    headers: Mapping[str, str] | None = None,
    include_usage: bool,
) -> HttpRequest:
    """`build_chat_request` with `"stream": true`, asking for an event-stream answer.

    Args:
        include_usage: add `stream_options.include_usage` (OpenAI sends no usage without it).
    """
    body = _chat_body(request, settings, max_tokens_field=max_tokens_field)
    body["stream"] = True
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return _chat_http(settings, body, {"accept": "text/event-stream", **(headers or {})})


def _chat_body(
    request: ChatRequest, settings: ProviderSettings, *, max_tokens_field: str
) -> dict[str, object]:
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
    return body


def _chat_http(
    settings: ProviderSettings, body: dict[str, object], headers: Mapping[str, str]
) -> HttpRequest:
    api_key = settings.api_key.reveal() if settings.api_key else ""
    return HttpRequest(
        method="POST",
        url=f"{settings.base_url}/chat/completions",
        headers={
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
            **headers,
        },
        body=compact_json(body),
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


class ChatStreamParser:
    """One streamed `chat.completion.chunk` reply, shared by OpenAI and GLM.

    Text comes from `choices[0].delta.content` (GLM's `reasoning_content` is thinking, not
    text); the finish reason from that choice; usage from whichever chunk carries it (OpenAI: a
    last chunk with `choices: []`, GLM: the last chunk with choices). `data: [DONE]` ends it.

    Args:
        provider: the provider name errors carry.
        model: the reply's model when no chunk names one.
        classify: turns an in-stream error chunk's JSON into the provider's typed error.
    """

    def __init__(
        self, *, provider: str, model: str, classify: Callable[[bytes], ProviderError]
    ) -> None:
        self._provider = provider
        self._model = model
        self._classify = classify
        self._text: list[str] = []
        self._finish: str | None = None
        self._id: str | None = None
        self._usage: Usage | None = None
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[str]:
        if event.data.strip() == "[DONE]":
            self._done = True
            return []
        data = event_json(event.data, provider=self._provider)
        # The SDK raises on any chunk with an `error` key, choices or not.
        if data.get("error"):
            raise self._classify(event.data.encode())
        if data.get("id"):
            self._id = str(data["id"])
        if data.get("model"):
            self._model = str(data["model"])
        if isinstance(data.get("usage"), dict):
            self._usage = chat_usage(data["usage"])
        choices = data.get("choices")
        choice = _first_choice(choices) if isinstance(choices, list) else None
        if choice is None:
            return []
        if choice.get("finish_reason"):
            self._finish = str(choice["finish_reason"])
        delta = choice.get("delta")
        text = _content_text(delta.get("content") if isinstance(delta, dict) else None)
        if not text:
            return []
        self._text.append(text)
        return [text]

    def usage_so_far(self) -> Usage | None:
        return self._usage

    def finish(self) -> ProviderReply:
        if not self._done:
            raise MalformedResponseError(
                "the stream ended without its `data: [DONE]` line (truncated)",
                provider=self._provider,
            )
        return ProviderReply(
            text="".join(self._text),
            finish_reason=self._finish or UNKNOWN_FINISH,
            model=self._model,
            response_id=self._id,
            usage=self._usage,
        )


def _first_choice(choices: list[object]) -> dict[str, object] | None:
    # Only one completion is ever asked for; `index` 0 is it (n>1 would interleave indexes).
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


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
