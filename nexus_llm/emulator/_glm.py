"""Zhipu GLM's chat completions success body and key check, as pure functions.

Request parsing and the reply text are shared with OpenAI (``_chat_completions``); error bodies
live in ``_glm_errors``. GLM answers without ``object``, ``service_tier`` or any rate-limit
header, and reports ``completion_tokens_details`` only when there were reasoning tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Final

from ._chat_completions import ChatCompletionRequest, Completion, Dialect
from ._sse import split_words

DIALECT: Final = Dialect(
    roles=("system", "user", "assistant", "tool"),
    max_temperature=1.0,
    limit_fields=("max_tokens",),
    formats=("text", "json_object"),
    fields=None,  # GLM ignores fields it does not know
)

_MODEL_PREFIXES: Final = ("glm-", "chatglm", "charglm", "codegeex")
REASONING_TEXT: Final = "Emulated reasoning."


def is_known_model(model: str) -> bool:
    """Whether the emulator serves ``model`` (anything else is 400 business code 1211)."""
    return model.lower().startswith(_MODEL_PREFIXES)


def success_body(
    request: ChatCompletionRequest, completion: Completion, *, include_usage: bool = True
) -> dict[str, object]:
    """The 200 body: keys in GLM's (alphabetical) order, ``request_id`` echoing the client's."""
    response_id = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)
    message: dict[str, object] = {"content": completion.text, "role": "assistant"}
    if completion.reasoning_tokens:
        message["reasoning_content"] = REASONING_TEXT
    body: dict[str, object] = {
        "choices": [{"finish_reason": completion.finish_reason, "index": 0, "message": message}],
        "created": int(time.time()),
        "id": response_id,
        "model": request.model,
        "request_id": request.request_id or response_id,
    }
    if include_usage:
        body["usage"] = usage(completion)
    return body


def stream_chunks(
    request: ChatCompletionRequest, completion: Completion, *, include_usage: bool = True
) -> list[dict[str, object]]:
    """The chunks of a GLM stream: the unary text one word per chunk, usage on the last one.

    Reasoning (the ``thoughts_tokens`` knob) comes first as a ``reasoning_content`` delta; the
    last chunk has an empty delta, the ``finish_reason`` and, unless left out, the usage.
    """
    response_id = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)
    created = int(time.time())
    deltas: list[dict[str, object]] = []
    if completion.reasoning_tokens:
        deltas.append({"role": "assistant", "reasoning_content": REASONING_TEXT})
    deltas.extend({"role": "assistant", "content": piece} for piece in split_words(completion.text))
    chunks: list[dict[str, object]] = [
        {
            "id": response_id,
            "created": created,
            "model": request.model,
            "choices": [{"index": 0, "delta": delta}],
        }
        for delta in deltas
    ]
    last: dict[str, object] = {
        "id": response_id,
        "created": created,
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "finish_reason": completion.finish_reason,
                "delta": {"role": "assistant", "content": ""},
            }
        ],
    }
    if include_usage:
        last["usage"] = usage(completion)
    chunks.append(last)
    return chunks


def usage(completion: Completion) -> dict[str, object]:
    """The ``usage`` block: ``prompt_tokens_details`` always, reasoning details when non-zero."""
    block: dict[str, object] = {
        "completion_tokens": completion.completion_tokens,
        "prompt_tokens": completion.prompt_tokens,
        "prompt_tokens_details": {"cached_tokens": completion.cached_tokens},
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }
    if completion.reasoning_tokens:
        block["completion_tokens_details"] = {"reasoning_tokens": completion.reasoning_tokens}
    return block


def refusal_code(token: str, key: str, *, now_ms: int | None = None) -> str | None:
    """Check a Bearer token against the API key; None if accepted, else the business code.

    The key itself is accepted, and so is the legacy self-signed JWT when the key has the
    ``{id}.{secret}`` form: HS256 over the secret, ``api_key`` the id and ``exp`` in
    **milliseconds** (a seconds ``exp`` therefore reads as long expired, as on the real API).
    Returns ``"1002"`` for an invalid token and ``"1003"`` for an expired one.
    """
    if secrets.compare_digest(token.encode(), key.encode()):
        return None
    parts = token.split(".")
    kid, dot, secret = key.partition(".")
    if len(parts) != 3 or not dot:
        return "1002"
    signed = f"{parts[0]}.{parts[1]}".encode()
    expected = _b64url(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    if not secrets.compare_digest(parts[2].encode(), expected.encode()):
        return "1002"
    payload = _json_part(parts[1])
    if payload is None or payload.get("api_key") != kid:
        return "1002"
    exp = payload.get("exp")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= now:
        return "1003"
    return None


def sign_token(key: str, *, ttl_s: float = 210.0, now_ms: int | None = None) -> str:
    """A legacy GLM JWT for ``key`` (``{id}.{secret}``), as the ``zhipuai`` SDK builds it."""
    kid, _, secret = key.partition(".")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    header = {"alg": "HS256", "sign_type": "SIGN"}
    payload = {"api_key": kid, "exp": now + int(ttl_s * 1000), "timestamp": now}
    signing = f"{_b64url(_compact(header))}.{_b64url(_compact(payload))}"
    signature = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64url(signature)}"


def _compact(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_part(part: str) -> dict[str, object] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None
