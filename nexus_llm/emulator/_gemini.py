"""Gemini's ``generateContent`` wire format as pure functions: parse, count, reply.

Everything the emulator says is a deterministic function of the request so tests can predict
it: a token is a word or a punctuation mark (``count_tokens``), the prompt is every text part
of ``contents`` and ``systemInstruction`` (``prompt_tokens``), and the reply text depends only
on the prompt's token count (``reply_text``). Error bodies live in ``_gemini_errors``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import final

from ._sse import split_words
from ._state import UsageKnobs

_TOKEN = re.compile(r"\w+|[^\w\s]")

# Google's proto3 JSON parser accepts the original snake_case names as well as camelCase.
_TOP_LEVEL_FIELDS = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "system_instruction",
        "generationConfig",
        "generation_config",
        "safetySettings",
        "safety_settings",
        "tools",
        "toolConfig",
        "tool_config",
        "cachedContent",
        "cached_content",
    }
)
_ROLES = ("user", "model")
_MIME_TYPES = ("text/plain", "application/json", "application/xml", "application/yaml")
_CONTENT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.Content"
_PART_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.Part"
_SAFETY_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)


def count_tokens(text: str) -> int:
    """Return the emulator's token count of ``text``: its words plus its punctuation marks.

    A token is one match of ``\\w+|[^\\w\\s]``, so ``"Hello, world!"`` is 4 tokens.
    """
    return len(_TOKEN.findall(text))


def prompt_tokens(body: Mapping[str, object]) -> int:
    """Return the prompt token count of a request body: ``count_tokens`` summed over every text
    part of ``contents`` and ``systemInstruction`` (either spelling); other parts count 0."""
    system = _field(body, "systemInstruction", "system_instruction")
    contents = body.get("contents")
    sources = [*(contents if isinstance(contents, list) else []), system]
    return sum(count_tokens(text) for text in _texts(sources))


def reply_text(prompt_token_count: int, *, json_mode: bool = False) -> str:
    """Return the full (untruncated) reply the emulator gives to a prompt of that size."""
    if json_mode:
        return json.dumps({"emulated": True, "prompt_tokens": prompt_token_count})
    return f"Emulated gemini reply to {prompt_token_count} prompt tokens."


def first_tokens(text: str, limit: int) -> str:
    """Return ``text`` up to the end of its ``limit``-th token, spacing kept."""
    for number, match in enumerate(_TOKEN.finditer(text), start=1):
        if number == limit:
            return text[: match.end()]
    return text


class InvalidRequest(ValueError):
    """A request body Gemini would answer with 400 ``INVALID_ARGUMENT``; the message is Google's."""


@final
@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """What the emulator needs from a valid ``generateContent`` body."""

    prompt_tokens: int
    max_output_tokens: int | None
    json_mode: bool


def parse_request(raw: bytes) -> GenerateRequest:
    """Validate a ``generateContent`` body; raise ``InvalidRequest`` with Google's message."""
    body = _decode(raw)
    for name in body:
        if name not in _TOP_LEVEL_FIELDS:
            raise InvalidRequest(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )
    contents = body.get("contents")
    if contents is None or contents == []:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise _invalid_value("contents", _CONTENT_TYPE, contents)
    for index, content in enumerate(contents):
        _check_content(f"contents[{index}]", content, check_role=True)
    system = _field(body, "systemInstruction", "system_instruction")
    if system is not None:
        _check_content("system_instruction", system, check_role=False)
    config = _field(body, "generationConfig", "generation_config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise _invalid_value("generation_config", "GenerationConfig", config)
    mime = _field(config, "responseMimeType", "response_mime_type")
    if mime is not None and mime not in (*_MIME_TYPES, "text/x.enum"):
        raise InvalidRequest(
            "* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes "
            "are `text/plain`, `application/json`, `application/xml`, `application/yaml` and "
            "`text/x.enum`.\n"
        )
    return GenerateRequest(
        prompt_tokens=prompt_tokens(body),
        max_output_tokens=_max_output_tokens(
            _field(config, "maxOutputTokens", "max_output_tokens")
        ),
        json_mode=mime == "application/json",
    )


def success_body(
    model: str,
    request: GenerateRequest,
    knobs: UsageKnobs,
    *,
    response_id: str,
    include_usage: bool = True,
) -> dict[str, object]:
    """Return the 200 body of ``generateContent`` for a parsed request.

    The reply is cut to ``maxOutputTokens`` tokens (finishReason ``MAX_TOKENS``) when it would be
    longer. Usage omits zero counts except ``promptTokenCount`` and ``totalTokenCount``.
    """
    text, finish = answer(request)
    body: dict[str, object] = {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": finish,
                "index": 0,
                "safetyRatings": [
                    {"category": category, "probability": "NEGLIGIBLE"}
                    for category in _SAFETY_CATEGORIES
                ],
            }
        ],
    }
    if include_usage:
        body["usageMetadata"] = usage_metadata(request.prompt_tokens, count_tokens(text), knobs)
    body["modelVersion"] = model
    body["responseId"] = response_id
    return body


def answer(request: GenerateRequest) -> tuple[str, str]:
    """The reply text and finishReason: cut to ``maxOutputTokens`` (``MAX_TOKENS``) if longer."""
    text = reply_text(request.prompt_tokens, json_mode=request.json_mode)
    limit = request.max_output_tokens
    if limit is not None and count_tokens(text) > limit:
        return first_tokens(text, limit), "MAX_TOKENS"
    return text, "STOP"


def stream_chunks(
    model: str,
    request: GenerateRequest,
    knobs: UsageKnobs,
    *,
    response_id: str,
    include_usage: bool = True,
) -> list[dict[str, object]]:
    """The ``streamGenerateContent`` chunks: the unary reply's text, one word per chunk.

    Every chunk carries ``usageMetadata`` (cumulative: the prompt only, until the last chunk
    reports the unary reply's usage) and the last one the ``finishReason``.
    """
    text, finish = answer(request)
    pieces = split_words(text) or [""]
    partial = usage_metadata(
        request.prompt_tokens, 0, UsageKnobs(cached_tokens=knobs.cached_tokens)
    )
    chunks: list[dict[str, object]] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        candidate: dict[str, object] = {
            "content": {"parts": [{"text": piece}], "role": "model"},
            "index": 0,
        }
        if last:
            candidate["finishReason"] = finish
        chunk: dict[str, object] = {"candidates": [candidate]}
        if include_usage:
            chunk["usageMetadata"] = (
                usage_metadata(request.prompt_tokens, count_tokens(text), knobs)
                if last
                else partial
            )
        chunk["modelVersion"] = model
        chunk["responseId"] = response_id
        chunks.append(chunk)
    return chunks


def usage_metadata(prompt: int, candidates: int, knobs: UsageKnobs) -> dict[str, object]:
    """Return ``usageMetadata`` in Gemini's shape: camelCase, zero counts omitted."""
    # Cached tokens are a subset of the prompt, so a knob larger than the prompt is clamped.
    cached = min(knobs.cached_tokens, prompt)
    usage: dict[str, object] = {"promptTokenCount": prompt}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    if cached:
        usage["cachedContentTokenCount"] = cached
    if knobs.thoughts_tokens:
        usage["thoughtsTokenCount"] = knobs.thoughts_tokens
    usage["totalTokenCount"] = prompt + candidates + knobs.thoughts_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if candidates:
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": candidates}]
    return usage


def _decode(raw: bytes) -> dict[str, object]:
    if not raw.strip():
        return {}  # an empty body is an empty message, which then lacks ``contents``
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("Invalid JSON payload received. Invalid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Invalid JSON payload received. Unexpected token at line {exc.lineno} "
            f"column {exc.colno}: {exc.msg}."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            'Invalid JSON payload received. Unknown name "": Root element must be a message.'
        )
    return body


def _check_content(where: str, content: object, *, check_role: bool) -> None:
    if not isinstance(content, dict):
        raise _invalid_value(where, _CONTENT_TYPE, content)
    role = content.get("role")
    # The classic client bug is OpenAI's "assistant"; Gemini rejects it, so must we.
    if check_role and role is not None and role not in _ROLES:
        raise InvalidRequest("Please use a valid role: user, model.")
    parts = content.get("parts")
    if parts is None or parts == []:
        raise InvalidRequest(
            f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n"
        )
    if not isinstance(parts, list):
        raise _invalid_value(f"{where}.parts", _PART_TYPE, parts)
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            raise _invalid_value(f"{where}.parts[{index}]", _PART_TYPE, part)
        if "text" in part and not isinstance(part["text"], str):
            raise _invalid_value(f"{where}.parts[{index}].text", "TYPE_STRING", part["text"])


def _max_output_tokens(value: object) -> int | None:
    # proto3 JSON accepts int32 as a number or a decimal string; 0 is the proto default: unset.
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_value("generation_config.max_output_tokens", "TYPE_INT32", value)
    if value < 0:
        raise InvalidRequest(
            "* GenerateContentRequest.generation_config.max_output_tokens: "
            "max_output_tokens must be positive.\n"
        )
    return value


def _invalid_value(where: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(f"Invalid value at '{where}' ({expected}), {json.dumps(value)}")


def _field(obj: Mapping[str, object], camel: str, snake: str) -> object:
    return obj[camel] if camel in obj else obj.get(snake)


def _texts(contents: list[object]) -> Iterator[str]:
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str):
                yield text
