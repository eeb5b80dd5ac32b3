"""Anthropic's Messages wire format as pure functions: validate, count, reply.

Counting reuses the Gemini emulator's rule (``count_tokens``: words plus punctuation marks), so
tests can predict every figure: the prompt is every text of ``system`` and ``messages``; the
reply text depends only on the prompt's token count (``reply_text``).

Usage follows the live API, where ``input_tokens`` is only the uncached part of the prompt:

- ``cache_read_input_tokens`` is the ``cached_tokens`` knob, clamped to the prompt;
- ``cache_creation_input_tokens`` is the cached prefix (system, then messages, up to and
  including the last block with ``cache_control``) less what was read, so a request that marks
  a breakpoint reports a cache write; a ``"ttl": "1h"`` on that block books it as a 1-hour write;
- ``input_tokens`` is the rest; ``output_tokens`` is the reply plus the ``thoughts_tokens`` knob,
  which also adds a ``thinking`` block, both capped by ``max_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final, final

from ._gemini import count_tokens, first_tokens
from ._sse import split_words
from ._state import UsageKnobs

VERSIONS: Final = ("2023-06-01", "2026-10-21")
# Version 2026-10-21 refuses sampling parameters; 2023-06-01 keeps them.
SAMPLING_FREE_VERSION: Final = "2026-10-21"
_SAMPLING: Final = ("temperature", "top_p", "top_k")
_ROLES: Final = ("user", "assistant")
_TOP_LEVEL_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "thinking",
        "tools",
        "tool_choice",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
        "output_format",
        "inference_geo",
    }
)


class InvalidRequest(ValueError):
    """A body the API answers with 400 ``invalid_request_error``; the message is Anthropic's."""


@final
@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """What the emulator needs from a valid Messages body."""

    model: str
    max_tokens: int
    prompt_tokens: int
    cached_prefix_tokens: int
    one_hour_ttl: bool
    stream: bool


def parse_request(raw: bytes, *, version: str) -> MessagesRequest:
    """Validate a Messages body for ``anthropic-version: version``; raise ``InvalidRequest``."""
    body = _decode(raw)
    for name in body:
        if name not in _TOP_LEVEL_FIELDS:
            raise InvalidRequest(f"{name}: Extra inputs are not permitted")
    model = body.get("model")
    if model is None:
        raise InvalidRequest("model: Field required")
    if not isinstance(model, str):
        raise InvalidRequest("model: Input should be a valid string")
    max_tokens = _max_tokens(body.get("max_tokens"))
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    for index, message in enumerate(messages):
        _check_message(index, message)
    system = body.get("system")
    if system is not None:
        _check_content("system", system)
    _check_sampling(body, version)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    prompt, prefix, one_hour = _count_prompt(system, messages)
    return MessagesRequest(
        model=model,
        max_tokens=max_tokens,
        prompt_tokens=prompt,
        cached_prefix_tokens=prefix,
        one_hour_ttl=one_hour,
        stream=stream,
    )


def reply_text(prompt_token_count: int) -> str:
    """Return the full (untruncated) reply the emulator gives to a prompt of that size."""
    return f"Emulated anthropic reply to {prompt_token_count} prompt tokens."


def success_body(
    request: MessagesRequest,
    knobs: UsageKnobs,
    *,
    message_id: str,
    include_usage: bool = True,
) -> dict[str, object]:
    """Return the 200 body of ``POST /v1/messages`` for a parsed request.

    Thinking (the ``thoughts_tokens`` knob) spends ``max_tokens`` first; the text gets what is
    left and is cut there with stop_reason ``max_tokens``, so a small limit can leave no text.
    """
    thinking = min(knobs.thoughts_tokens, request.max_tokens)
    full = reply_text(request.prompt_tokens)
    room = request.max_tokens - thinking
    text = first_tokens(full, room) if room else ""
    stop_reason = "end_turn" if text == full else "max_tokens"
    content: list[dict[str, object]] = []
    if thinking:
        # Claude 4 models return a summary of their thinking, so its length is not the bill.
        content.append(
            {
                "type": "thinking",
                "thinking": f"Emulated thinking worth {thinking} tokens.",
                "signature": "RW11bGF0ZWQgc2lnbmF0dXJl",
            }
        )
    if text:
        content.append({"type": "text", "text": text})
    body: dict[str, object] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
    }
    if include_usage:
        usage = usage_block(request, knobs, output_tokens=count_tokens(text) + thinking)
        if thinking:
            usage["output_tokens_details"] = {"thinking_tokens": thinking}
        body["usage"] = usage
    return body


def stream_events(
    request: MessagesRequest,
    knobs: UsageKnobs,
    *,
    message_id: str,
    include_usage: bool = True,
) -> list[tuple[str, dict[str, object]]]:
    """The named events of a ``"stream": true`` answer, as ``(event name, data)`` pairs.

    They carry exactly the unary body: ``message_start`` the message without content (its usage
    has the input side and ``output_tokens: 1``), each content block as start, deltas (the text
    one word per ``text_delta``) and stop, a ``ping`` after the first block starts, then
    ``message_delta`` with the stop reason and the final usage, then ``message_stop``.
    """
    body = success_body(request, knobs, message_id=message_id, include_usage=include_usage)
    blocks = body["content"]
    content = blocks if isinstance(blocks, list) else []
    usage = body.get("usage")
    message = {**body, "content": [], "stop_reason": None, "stop_sequence": None}
    if isinstance(usage, dict):
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens_details"}
        message["usage"] = {**start_usage, "output_tokens": 1}
    events: list[tuple[str, dict[str, object]]] = [
        ("message_start", {"type": "message_start", "message": message})
    ]
    for index, block in enumerate(content):
        events.extend(_block_events(index, block))
    # The live API pings once, right after the first block starts (or the message, if empty).
    events.insert(2 if content else 1, ("ping", {"type": "ping"}))
    delta: dict[str, object] = {
        "type": "message_delta",
        "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
    }
    if isinstance(usage, dict):
        delta["usage"] = {
            name: usage[name]
            for name in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
                "output_tokens_details",
            )
            if name in usage
        }
    events.append(("message_delta", delta))
    return events


def _block_events(index: int, block: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    if block["type"] == "thinking":
        start: dict[str, object] = {"type": "thinking", "thinking": "", "signature": ""}
        deltas: list[dict[str, object]] = [
            {"type": "thinking_delta", "thinking": piece}
            for piece in split_words(str(block["thinking"]))
        ]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        start = {"type": "text", "text": ""}
        deltas = [
            {"type": "text_delta", "text": piece} for piece in split_words(str(block["text"]))
        ]
    return [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        ),
        *(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def usage_block(
    request: MessagesRequest, knobs: UsageKnobs, *, output_tokens: int
) -> dict[str, object]:
    """Return ``usage`` in Anthropic's shape: the three input parts sum to the prompt."""
    read = min(knobs.cached_tokens, request.prompt_tokens)
    write = max(request.cached_prefix_tokens - read, 0)
    return {
        "input_tokens": request.prompt_tokens - read - write,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if request.one_hour_ttl else write,
            "ephemeral_1h_input_tokens": write if request.one_hour_ttl else 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def fallback_request(raw: bytes) -> MessagesRequest:
    """A best-effort parse for the broken-200 faults, which skip validation."""
    try:
        return parse_request(raw, version=VERSIONS[0])
    except InvalidRequest:
        return MessagesRequest(
            model="claude-haiku-4-5",
            max_tokens=1024,
            prompt_tokens=0,
            cached_prefix_tokens=0,
            one_hour_ttl=False,
            stream=False,
        )


def _decode(raw: bytes) -> dict[str, object]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(
            f"There was an error parsing the body of your request: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("Input should be a valid dictionary")
    return body


def _max_tokens(value: object) -> int:
    if value is None:
        raise InvalidRequest("max_tokens: Field required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("max_tokens: Input should be a valid integer")
    if value < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    return value


def _check_message(index: int, message: object) -> None:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where}: Input should be a valid dictionary")
    if "role" not in message:
        raise InvalidRequest(f"{where}.role: Field required")
    # The classic client bug is a "system" (OpenAI) or "model" (Gemini) turn.
    if message["role"] not in _ROLES:
        raise InvalidRequest(f"{where}.role: Input should be 'user' or 'assistant'")
    if "content" not in message:
        raise InvalidRequest(f"{where}.content: Field required")
    _check_content(f"{where}.content", message["content"])


def _check_content(where: str, content: object) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: Input should be a valid string or a list of blocks")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}.{index}: Input should be a valid content block")
        if block["type"] == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"{where}.{index}.text: Input should be a valid string")
            if not text:
                root = where.split(".", 1)[0]
                raise InvalidRequest(f"{root}: text content blocks must be non-empty")


def _check_sampling(body: Mapping[str, object], version: str) -> None:
    for name in _SAMPLING:
        if name not in body:
            continue
        if version == SAMPLING_FREE_VERSION:
            raise InvalidRequest(
                f"{name}: sampling parameters are not supported with anthropic-version "
                f"{SAMPLING_FREE_VERSION}"
            )
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{name}: Input should be a valid number")
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not 0 <= temperature <= 1:
        raise InvalidRequest("temperature: range: 0..1")


def _count_prompt(system: object, messages: list[object]) -> tuple[int, int, bool]:
    """Return the prompt tokens, the cached prefix tokens and whether that prefix lives 1 h."""
    total = prefix = 0
    one_hour = False
    for text, marker in _blocks(system, messages):
        total += count_tokens(text)
        if marker is not None:
            prefix, one_hour = total, marker.get("ttl") == "1h"
    return total, prefix, one_hour


def _blocks(
    system: object, messages: list[object]
) -> Iterator[tuple[str, Mapping[str, object] | None]]:
    """Every prompt text in order, with the ``cache_control`` of its block, if any."""
    sources = [system, *(m.get("content") if isinstance(m, dict) else None for m in messages)]
    for content in sources:
        if isinstance(content, str):
            yield content, None
        elif isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                text = block.get("text")
                marker = block.get("cache_control")
                yield (
                    text if isinstance(text, str) else "",
                    marker if isinstance(marker, dict) else None,
                )
