"""The Chat Completions wire format OpenAI and GLM share, as pure functions: parse, count, reply.

Validation finds the first thing wrong with a body and describes it as a ``Problem``; each
provider then words it in its own error envelope. Counting follows the Gemini emulator's rule
(``count_tokens``: a word or a punctuation mark is one token) over every message's text, so a
test can predict usage from the prompt alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import final

from ._gemini import count_tokens, first_tokens
from ._state import UsageKnobs


@final
@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with a request body.

    Args:
        kind: ``json`` (not a JSON object), ``missing``, ``type`` (wrong JSON type), ``empty``
            (empty array), ``enum`` (value not allowed), ``min`` / ``max`` (out of range) or
            ``unknown`` (a top-level field the API does not know).
        param: The offending field as the API names it, e.g. ``messages[0].role``.
        got: The value received.
        expected_type: For ``type``: the JSON type wanted, e.g. ``"array"``.
        allowed: For ``enum``: the values allowed, in the API's order.
        bound: For ``min`` / ``max``: the bound crossed.
    """

    kind: str
    param: str | None = None
    got: object = None
    expected_type: str = ""
    allowed: tuple[str, ...] = ()
    bound: float = 0


class InvalidChatRequest(ValueError):
    """A body the API would refuse with 400; ``problem`` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.kind)
        self.problem = problem


@final
@dataclass(frozen=True, slots=True)
class ChatCompletionRequest:
    """What the emulator needs from a valid chat completions body.

    Args:
        limit_field: Which field set ``max_tokens`` (``max_tokens`` or
            ``max_completion_tokens``), or None when neither did.
        mentions_json: Whether some message text contains the word "json" (any case), which
            OpenAI requires for ``response_format: json_object``.
        request_id: GLM's client-chosen ``request_id``, echoed back; None when not a string.
        include_usage: Whether ``stream_options.include_usage`` asked for OpenAI's usage chunk.
    """

    model: str
    prompt_tokens: int
    max_tokens: int | None = None
    limit_field: str | None = None
    json_mode: bool = False
    stream: bool = False
    mentions_json: bool = False
    request_id: str | None = None
    include_usage: bool = False


@final
@dataclass(frozen=True, slots=True)
class Dialect:
    """How one provider's chat completions differ in what they accept.

    Args:
        roles: The allowed message roles, in the order the API lists them.
        max_temperature: The largest temperature allowed (the smallest is 0).
        limit_fields: The output-limit fields, preferred first.
        formats: The allowed ``response_format.type`` values.
        fields: The top-level fields known, or None when unknown ones are ignored.
    """

    roles: tuple[str, ...]
    max_temperature: float
    limit_fields: tuple[str, ...]
    formats: tuple[str, ...]
    fields: frozenset[str] | None = None


def parse_chat_request(raw: bytes, dialect: Dialect) -> ChatCompletionRequest:
    """Validate a chat completions body; raise ``InvalidChatRequest`` at the first problem."""
    body = _decode(raw)
    if dialect.fields is not None:
        for name in body:
            if name not in dialect.fields:
                raise InvalidChatRequest(Problem("unknown", name))
    model = body.get("model")
    if model is None or model == "":
        raise InvalidChatRequest(Problem("missing", "model"))
    if not isinstance(model, str):
        raise InvalidChatRequest(Problem("type", "model", model, expected_type="string"))
    texts = _message_texts(body, dialect.roles)
    _check_temperature(body.get("temperature"), dialect.max_temperature)
    limit, limit_field = _limit(body, dialect.limit_fields)
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidChatRequest(Problem("type", "stream", stream, expected_type="boolean"))
    return ChatCompletionRequest(
        model=model,
        prompt_tokens=sum(count_tokens(text) for text in texts),
        max_tokens=limit,
        limit_field=limit_field,
        json_mode=_format(body.get("response_format"), dialect.formats) == "json_object",
        stream=bool(stream),
        mentions_json=any("json" in text.lower() for text in texts),
        request_id=request_id if isinstance(request_id := body.get("request_id"), str) else None,
        include_usage=_include_usage(body),
    )


def lenient_request(raw: bytes, fallback_model: str) -> ChatCompletionRequest:
    """The request as far as it parses, for the broken-200 faults that skip validation."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return ChatCompletionRequest(model=fallback_model, prompt_tokens=0)
    model = body.get("model")
    messages = body.get("messages")
    texts = [
        text
        for message in (messages if isinstance(messages, list) else [])
        if isinstance(message, dict)
        for text in _texts(message.get("content"))
    ]
    return ChatCompletionRequest(
        model=model if isinstance(model, str) and model else fallback_model,
        prompt_tokens=sum(count_tokens(text) for text in texts),
        stream=body.get("stream") is True,
        include_usage=_include_usage(body),
    )


def _include_usage(body: Mapping[str, object]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


@final
@dataclass(frozen=True, slots=True)
class Completion:
    """The emulator's answer to a request: text, finish reason and token counts."""

    text: str
    finish_reason: str
    prompt_tokens: int
    visible_tokens: int
    reasoning_tokens: int
    cached_tokens: int

    @property
    def completion_tokens(self) -> int:
        """Every output token: the visible text plus the hidden reasoning."""
        return self.visible_tokens + self.reasoning_tokens


def complete(provider: str, request: ChatCompletionRequest, knobs: UsageKnobs) -> Completion:
    """Answer ``request``: the reply text, cut to ``max_tokens`` (finish ``length``) if needed.

    The usage knobs add reasoning tokens (``thoughts_tokens``) and mark part of the prompt as
    cached (``cached_tokens``, clamped to the prompt).
    """
    text = reply_text(provider, request.prompt_tokens, json_mode=request.json_mode)
    finish = "stop"
    if request.max_tokens is not None and count_tokens(text) > request.max_tokens:
        text, finish = first_tokens(text, request.max_tokens), "length"
    return Completion(
        text=text,
        finish_reason=finish,
        prompt_tokens=request.prompt_tokens,
        visible_tokens=count_tokens(text),
        reasoning_tokens=knobs.thoughts_tokens,
        cached_tokens=min(knobs.cached_tokens, request.prompt_tokens),
    )


def reply_text(provider: str, prompt_tokens: int, *, json_mode: bool = False) -> str:
    """The full (untruncated) reply ``provider``'s emulator gives to a prompt of that size."""
    if json_mode:
        return json.dumps({"emulated": True, "prompt_tokens": prompt_tokens})
    return f"Emulated {provider} reply to {prompt_tokens} prompt tokens."


def json_type(value: object) -> str:
    """The JSON type name of a decoded value, as OpenAI's messages say it ("an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _decode(raw: bytes) -> dict[str, object]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidChatRequest(Problem("json")) from None
    if not isinstance(body, dict):
        raise InvalidChatRequest(Problem("json", got=body))
    return body


def _message_texts(body: Mapping[str, object], roles: Sequence[str]) -> list[str]:
    messages = body.get("messages")
    if messages is None:
        raise InvalidChatRequest(Problem("missing", "messages"))
    if not isinstance(messages, list):
        raise InvalidChatRequest(Problem("type", "messages", messages, expected_type="array"))
    if not messages:
        raise InvalidChatRequest(Problem("empty", "messages"))
    texts: list[str] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidChatRequest(Problem("type", where, message, expected_type="object"))
        role = message.get("role")
        if role is None:
            raise InvalidChatRequest(Problem("missing", f"{where}.role"))
        if role not in roles:
            raise InvalidChatRequest(Problem("enum", f"{where}.role", role, allowed=tuple(roles)))
        content = message.get("content")
        # Only an assistant turn may leave content out (it then carries tool calls).
        if content is None and role != "assistant":
            raise InvalidChatRequest(Problem("missing", f"{where}.content"))
        if content is not None and not isinstance(content, str | list):
            raise InvalidChatRequest(
                Problem("type", f"{where}.content", content, expected_type="string")
            )
        texts.extend(_texts(content))
    return texts


def _texts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
    return []


def _check_temperature(value: object, maximum: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidChatRequest(Problem("type", "temperature", value, expected_type="number"))
    if value < 0:
        raise InvalidChatRequest(Problem("min", "temperature", value, bound=0))
    if value > maximum:
        raise InvalidChatRequest(Problem("max", "temperature", value, bound=maximum))


def _limit(body: Mapping[str, object], fields: Sequence[str]) -> tuple[int | None, str | None]:
    for field in fields:
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidChatRequest(Problem("type", field, value, expected_type="integer"))
        if value < 1:
            raise InvalidChatRequest(Problem("min", field, value, bound=1))
        return value, field
    return None, None


def _format(value: object, allowed: Sequence[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidChatRequest(Problem("type", "response_format", value, expected_type="object"))
    kind = value.get("type")
    if kind is None:
        raise InvalidChatRequest(Problem("missing", "response_format.type"))
    if kind not in allowed:
        raise InvalidChatRequest(
            Problem("enum", "response_format.type", kind, allowed=tuple(allowed))
        )
    return str(kind)
