"""The emulated Zhipu GLM API surface (`/api/paas/v4/`, BigModel and Z.ai alike).

Order per request (the server core has already counted it and done the wire-level faults):
a provider error fault answers at once; ``malformed_json`` and ``truncated`` answer 200 at once;
otherwise route, method, key, body and model are checked in that order, and the success reply
drops ``usage`` under ``omit_usage``. No answer carries a rate-limit or Retry-After header.
``"stream": true`` streams the same answer as ``data:`` chunks, usage on the last one, then
``data: [DONE]``; broken-200 faults on a stream request break the stream instead.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Final, final

from . import _glm as wire
from . import _glm_errors as errors
from ._chat_completions import (
    ChatCompletionRequest,
    InvalidChatRequest,
    complete,
    lenient_request,
    parse_chat_request,
)
from ._faults import Fault, FaultKind
from ._glm_errors import GLMError
from ._http import Answer, Reply, Request, malformed, truncated
from ._sse import Event, Framing, StreamPlan, json_event, stream_reply
from ._state import UsageKnobs

_PREFIX: Final = "/api/paas/v4/"
_CHAT: Final = "/api/paas/v4/chat/completions"
_CONTENT_TYPE: Final = "application/json"
_STREAM_CONTENT_TYPE: Final = "text/event-stream;charset=UTF-8"
_FALLBACK_MODEL: Final = "glm-4-flash"


@final
class GLMRoutes:
    """Answers ``POST /api/paas/v4/chat/completions`` like the live BigModel / Z.ai API.

    Args:
        key: The one API key accepted, as ``Authorization: Bearer <key>`` or, when it has the
            ``{id}.{secret}`` form, as a legacy JWT signed with it.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    @property
    def name(self) -> str:
        """The provider name: ``"glm"``."""
        return "glm"

    def owns(self, path: str) -> bool:
        """Everything under ``/api/paas/v4/`` is GLM's."""
        return path.startswith(_PREFIX)

    def handle(self, request: Request, knobs: UsageKnobs, fault: Fault | None) -> Answer:
        """Answer one request to the GLM API surface, suffering ``fault`` if given."""
        english = request.headers.get("accept-language", "").lower().startswith("en")
        kind = fault.kind if fault is not None else None
        if fault is not None and (failure := _fault_error(fault, english=english)) is not None:
            return _error(failure)
        if kind in (FaultKind.MALFORMED_JSON, FaultKind.TRUNCATED):
            lenient = lenient_request(request.body, _FALLBACK_MODEL)
            if lenient.stream:
                return _stream(lenient, knobs, kind, english=english)
            reply = _success(lenient, knobs)
            broken = malformed(reply) if kind is FaultKind.MALFORMED_JSON else truncated(reply)
            return replace(broken, content_type=_CONTENT_TYPE)
        if request.path != _CHAT:
            return _error(errors.api_not_found_error(request.path, english=english))
        if request.method != "POST":
            return _error(
                errors.method_not_allowed_error(request.method, request.path),
                headers=(("allow", "POST"),),
            )
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            return _error(errors.missing_key_error(english=english))
        refusal = wire.refusal_code(token, self._key)
        if refusal == "1003":
            return _error(errors.expired_token_error(english=english))
        if refusal is not None:
            return _error(errors.invalid_key_error(english=english))
        try:
            parsed = parse_chat_request(request.body, wire.DIALECT)
        except InvalidChatRequest as exc:
            return _error(errors.problem_error(exc.problem, english=english))
        if not wire.is_known_model(parsed.model):
            return _error(errors.model_not_found_error(english=english))
        if parsed.stream:
            return _stream(parsed, knobs, kind, english=english)
        if kind is FaultKind.STREAM_ERROR:
            return _error(errors.internal_error(english=english))
        reply = _success(parsed, knobs, include_usage=kind is not FaultKind.OMIT_USAGE)
        return (
            replace(truncated(reply), content_type=_CONTENT_TYPE)
            if kind is FaultKind.STREAM_CUT
            else reply
        )


def _stream(
    parsed: ChatCompletionRequest, knobs: UsageKnobs, kind: FaultKind | None, *, english: bool
) -> Answer:
    completion = complete("glm", parsed, knobs)
    chunks = wire.stream_chunks(parsed, completion, include_usage=kind is not FaultKind.OMIT_USAGE)
    plan = StreamPlan(
        body=tuple(json_event(chunk) for chunk in chunks),
        end=(Event("[DONE]"),),
        # stream_error sends the same error a unary request would get, as a data chunk.
        error=json_event(errors.internal_error(english=english).body()),
        framing=Framing.SSE,
    )
    return stream_reply(plan, kind, content_type=_STREAM_CONTENT_TYPE)


def _fault_error(fault: Fault, *, english: bool) -> GLMError | None:
    if fault.kind is FaultKind.BAD_KEY:
        return errors.invalid_key_error(english=english)
    if fault.kind is FaultKind.RATE_LIMIT:  # GLM gives no retry hint: retry_after_s is unused
        return errors.rate_limit_error(english=english)
    if fault.kind is FaultKind.QUOTA_DAILY:
        return errors.no_balance_error(english=english)
    if fault.kind is FaultKind.SERVER_ERROR:
        return errors.internal_error(english=english)
    if fault.kind is FaultKind.UNAVAILABLE:
        return errors.overloaded_error(english=english)
    return None


def _success(
    parsed: ChatCompletionRequest, knobs: UsageKnobs, *, include_usage: bool = True
) -> Reply:
    completion = complete("glm", parsed, knobs)
    return _reply(200, wire.success_body(parsed, completion, include_usage=include_usage))


def _error(error: GLMError, *, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return _reply(error.status, error.body(), headers=headers)


def _reply(
    status: int, payload: dict[str, object], *, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(status=status, body=body, content_type=_CONTENT_TYPE, headers=headers)
