"""OpenAI's chat completions success body and response headers, as pure functions.

Request parsing and the reply text are shared with GLM (``_chat_completions``); error bodies
live in ``_openai_errors``. Every answer, error or not, carries ``x-request-id`` and the six
``x-ratelimit-*`` headers, as the live API does.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Final

from ._chat_completions import ChatCompletionRequest, Completion, Dialect
from ._sse import split_words

DIALECT: Final = Dialect(
    roles=("system", "assistant", "user", "function", "tool", "developer"),
    max_temperature=2.0,
    limit_fields=("max_completion_tokens", "max_tokens"),
    formats=("json_object", "json_schema", "text"),
    fields=frozenset(
        {
            "model",
            "messages",
            "audio",
            "frequency_penalty",
            "function_call",
            "functions",
            "logit_bias",
            "logprobs",
            "max_completion_tokens",
            "max_tokens",
            "metadata",
            "modalities",
            "n",
            "parallel_tool_calls",
            "prediction",
            "presence_penalty",
            "prompt_cache_key",
            "reasoning_effort",
            "response_format",
            "safety_identifier",
            "seed",
            "service_tier",
            "stop",
            "store",
            "stream",
            "stream_options",
            "temperature",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "user",
            "verbosity",
            "web_search_options",
        }
    ),
)

# Model ids the emulator serves: any id with one of these prefixes, as new models keep coming.
_MODEL_PREFIXES: Final = ("gpt-", "chatgpt-", "o1", "o3", "o4", "ft:")
# Reasoning models refuse the deprecated `max_tokens`.
_REASONING_PREFIXES: Final = ("o1", "o3", "o4", "gpt-5")
# An alias answers with the snapshot it currently points at.
_SNAPSHOTS: Final = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
}
LIMIT_REQUESTS: Final = 5000
LIMIT_TOKENS: Final = 4_000_000
ORGANIZATION: Final = "org-nexus-emulator"


def is_known_model(model: str) -> bool:
    """Whether the emulator serves ``model`` (anything else is 404 ``model_not_found``)."""
    return model.startswith(_MODEL_PREFIXES)


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` is a reasoning model, which refuses ``max_tokens``."""
    return model.startswith(_REASONING_PREFIXES)


def success_body(
    request: ChatCompletionRequest, completion: Completion, *, include_usage: bool = True
) -> dict[str, object]:
    """The 200 ``chat.completion`` object for a parsed request and its completion."""
    body: dict[str, object] = {
        "id": "chatcmpl-" + secrets.token_urlsafe(21).replace("-", "x").replace("_", "y"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _SNAPSHOTS.get(request.model, request.model),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": completion.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": completion.finish_reason,
            }
        ],
    }
    if include_usage:
        body["usage"] = usage(completion)
    body["service_tier"] = "default"
    body["system_fingerprint"] = "fp_nexusemu01"
    return body


def stream_chunks(
    request: ChatCompletionRequest, completion: Completion, *, include_usage: bool
) -> list[dict[str, object]]:
    """The ``chat.completion.chunk`` objects of a stream: the unary text, one word per chunk.

    A first chunk opens the assistant turn, the last choice chunk carries ``finish_reason``;
    with ``include_usage`` every chunk has ``"usage": null`` and a last chunk with no choices
    carries the usage, as ``stream_options.include_usage`` asks.
    """
    common: dict[str, object] = {
        "id": "chatcmpl-" + secrets.token_urlsafe(21).replace("-", "x").replace("_", "y"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _SNAPSHOTS.get(request.model, request.model),
        "service_tier": "default",
        "system_fingerprint": "fp_nexusemu01",
    }
    deltas: list[tuple[dict[str, object], str | None]] = [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        *((_content(piece), None) for piece in split_words(completion.text)),
        ({}, completion.finish_reason),
    ]
    chunks: list[dict[str, object]] = []
    for delta, finish in deltas:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**common, "choices": [choice]}
        if include_usage:
            chunk["usage"] = None
        chunks.append(chunk)
    if include_usage:
        chunks.append({**common, "choices": [], "usage": usage(completion)})
    return chunks


def _content(piece: str) -> dict[str, object]:
    return {"content": piece}


def usage(completion: Completion) -> dict[str, object]:
    """The ``usage`` block: every detail field present, zeros included, as OpenAI sends it."""
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": completion.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": completion.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def headers(
    *, prompt_tokens: int = 0, retry_after_s: float | None = None
) -> tuple[tuple[str, str], ...]:
    """The response headers: request id, version and rate-limit state.

    With ``retry_after_s`` (an injected 429) the request budget reads 0 remaining, resetting
    in that long, and ``retry-after`` (whole seconds, rounded up) and ``retry-after-ms`` say so.
    """
    reset_requests = "12ms" if retry_after_s is None else duration(retry_after_s)
    common = (
        ("x-request-id", "req_" + secrets.token_hex(16)),
        ("openai-organization", ORGANIZATION),
        ("openai-processing-ms", "1"),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", str(LIMIT_REQUESTS)),
        ("x-ratelimit-limit-tokens", str(LIMIT_TOKENS)),
        (
            "x-ratelimit-remaining-requests",
            "0" if retry_after_s is not None else str(LIMIT_REQUESTS - 1),
        ),
        ("x-ratelimit-remaining-tokens", str(max(LIMIT_TOKENS - prompt_tokens, 0))),
        ("x-ratelimit-reset-requests", reset_requests),
        ("x-ratelimit-reset-tokens", "0s"),
    )
    if retry_after_s is None:
        return common
    return (
        *common,
        ("retry-after", str(math.ceil(retry_after_s))),
        ("retry-after-ms", str(round(retry_after_s * 1000))),
    )


def duration(seconds: float) -> str:
    """Seconds as the Go-style duration OpenAI's headers and messages use: ``20ms``, ``1.5s``,
    ``6m0s``, ``1h2m3s``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{_number(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    if hours:
        return f"{int(hours)}h{int(minutes)}m{_number(rest)}s"
    if minutes:
        return f"{int(minutes)}m{_number(rest)}s"
    return f"{_number(rest)}s"


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
