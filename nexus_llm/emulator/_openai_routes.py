"""The emulated OpenAI API surface: routing, Bearer key check, faults, then chat completions.

Order per request (the server core has already counted it and done the wire-level faults):
a provider error fault answers at once; ``malformed_json`` and ``truncated`` answer 200 at once;
otherwise route, method, key, body, model and the per-model rules are checked in that order, and
the success reply drops ``usage`` under ``omit_usage``. ``"stream": true`` streams the same
answer as ``chat.completion.chunk`` events ending with ``data: [DONE]``; broken-200 faults on a
stream request break the stream instead.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from typing import Final, final

from . import _openai as wire
from . import _openai_errors as errors
from ._chat_completions import (
    ChatCompletionRequest,
    InvalidChatRequest,
    complete,
    lenient_request,
    parse_chat_request,
)
from ._faults import Fault, FaultKind
from ._http import Answer, Reply, Request, malformed, truncated
from ._openai_errors import OpenAIError
from ._sse import Event, Framing, StreamPlan, json_event, stream_reply
from ._state import UsageKnobs

_PREFIX: Final = "/v1/"
_CHAT: Final = "/v1/chat/completions"
# Anthropic's Messages API lives under /v1/ too; those paths are not OpenAI's.
_NOT_OURS: Final = ("/v1/messages", "/v1/complete")
_CONTENT_TYPE: Final = "application/json"
_STREAM_CONTENT_TYPE: Final = "text/event-stream; charset=utf-8"
# The model the broken-200 faults and error faults name when the body names none.
_FALLBACK_MODEL: Final = "gpt-4o-mini"


@final
class OpenAIRoutes:
    """Answers ``POST /v1/chat/completions`` like the live OpenAI API.

    Args:
        key: The one API key accepted, from ``Authorization: Bearer <key>``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    @property
    def name(self) -> str:
        """The provider name: ``"openai"``."""
        return "openai"

    def owns(self, path: str) -> bool:
        """Everything under ``/v1/`` but Anthropic's ``/v1/messages`` and ``/v1/complete``."""
        if not path.startswith(_PREFIX):
            return False
        return not any(path == p or path.startswith(p + "/") for p in _NOT_OURS)

    def handle(self, request: Request, knobs: UsageKnobs, fault: Fault | None) -> Answer:
        """Answer one request to the OpenAI API surface, suffering ``fault`` if given."""
        kind = fault.kind if fault is not None else None
        if fault is not None and (failure := _fault_error(fault, request)) is not None:
            return _error(failure)
        if kind in (FaultKind.MALFORMED_JSON, FaultKind.TRUNCATED):
            lenient = lenient_request(request.body, _model_of(request))
            if lenient.stream:
                return _stream(lenient, knobs, kind)
            reply = _success(lenient, knobs)
            # Keep the headers: only the body is broken.
            if kind is FaultKind.MALFORMED_JSON:
                return replace(malformed(reply), headers=reply.headers, content_type=_CONTENT_TYPE)
            return replace(truncated(reply), headers=reply.headers, content_type=_CONTENT_TYPE)
        if request.path != _CHAT:
            return _error(errors.invalid_url_error(request.method, request.path))
        if request.method != "POST":
            return _error(
                errors.invalid_method_error(request.method, request.path),
                extra=(("allow", "POST"),),
            )
        key = _bearer(request.headers.get("authorization", ""))
        if not key:
            return _error(errors.missing_key_error())
        if not secrets.compare_digest(key.encode(), self._key.encode()):
            return _error(errors.invalid_key_error(key))
        try:
            parsed = parse_chat_request(request.body, wire.DIALECT)
        except InvalidChatRequest as exc:
            return _error(errors.problem_error(exc.problem))
        if not wire.is_known_model(parsed.model):
            return _error(errors.model_not_found_error(parsed.model))
        if parsed.limit_field == "max_tokens" and wire.is_reasoning_model(parsed.model):
            return _error(errors.unsupported_max_tokens_error())
        if parsed.json_mode and not parsed.mentions_json:
            return _error(errors.json_word_required_error())
        if parsed.stream:
            return _stream(parsed, knobs, kind)
        if kind is FaultKind.STREAM_ERROR:
            return _error(_IN_STREAM_ERROR)
        reply = _success(parsed, knobs, include_usage=kind is not FaultKind.OMIT_USAGE)
        if kind is FaultKind.STREAM_CUT:
            return replace(truncated(reply), headers=reply.headers, content_type=_CONTENT_TYPE)
        return reply


# What ``stream_error`` sends mid-stream (and answers a unary request with).
_IN_STREAM_ERROR = errors.server_error()


def _stream(parsed: ChatCompletionRequest, knobs: UsageKnobs, kind: FaultKind | None) -> Answer:
    completion = complete("openai", parsed, knobs)
    include_usage = parsed.include_usage and kind is not FaultKind.OMIT_USAGE
    chunks = wire.stream_chunks(parsed, completion, include_usage=include_usage)
    plan = StreamPlan(
        body=tuple(json_event(chunk) for chunk in chunks),
        end=(Event("[DONE]"),),
        error=json_event(_IN_STREAM_ERROR.body()),
        framing=Framing.SSE,
    )
    headers = wire.headers(prompt_tokens=parsed.prompt_tokens)
    return stream_reply(plan, kind, content_type=_STREAM_CONTENT_TYPE, headers=headers)


def _fault_error(fault: Fault, request: Request) -> OpenAIError | None:
    if fault.kind is FaultKind.BAD_KEY:
        sent = _bearer(request.headers.get("authorization", ""))
        return errors.invalid_key_error(sent) if sent else errors.missing_key_error()
    if fault.kind is FaultKind.RATE_LIMIT:
        return errors.rate_limit_error(_model_of(request), fault.retry_after_s)
    if fault.kind is FaultKind.QUOTA_DAILY:
        return errors.insufficient_quota_error()
    if fault.kind is FaultKind.SERVER_ERROR:
        return errors.server_error()
    if fault.kind is FaultKind.UNAVAILABLE:
        return errors.overloaded_error()
    return None


def _model_of(request: Request) -> str:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _FALLBACK_MODEL
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and model else _FALLBACK_MODEL


def _bearer(value: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _success(
    parsed: ChatCompletionRequest, knobs: UsageKnobs, *, include_usage: bool = True
) -> Reply:
    completion = complete("openai", parsed, knobs)
    body = wire.success_body(parsed, completion, include_usage=include_usage)
    return _reply(200, body, wire.headers(prompt_tokens=parsed.prompt_tokens))


def _error(error: OpenAIError, *, extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    headers = wire.headers(retry_after_s=error.retry_after_s)
    return _reply(error.status, error.body(), (*headers, *extra))


def _reply(status: int, payload: dict[str, object], headers: tuple[tuple[str, str], ...]) -> Reply:
    # OpenAI pretty-prints its JSON with two-space indents.
    body = json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")
    return Reply(status=status, body=body, content_type=_CONTENT_TYPE, headers=headers)
