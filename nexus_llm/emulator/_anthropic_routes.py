"""The emulated Anthropic API surface: ``POST /v1/messages`` with its key and version checks.

Order per request (the server core has already counted it and done the wire-level faults):
a provider error fault answers at once, whatever the request; ``malformed_json`` and
``truncated`` answer 200 at once; otherwise path, method, ``x-api-key``, ``anthropic-version``,
body and model are checked in that order, and the success reply drops ``usage`` under
``omit_usage``. Every answer carries ``request-id``; error bodies repeat it as ``request_id``.
``"stream": true`` streams the same answer as named events, ``message_start`` to
``message_stop``; broken-200 faults on a stream request break the stream instead.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, final

from . import _anthropic_errors as errors
from ._anthropic import (
    VERSIONS,
    InvalidRequest,
    MessagesRequest,
    fallback_request,
    parse_request,
    stream_events,
    success_body,
)
from ._anthropic_errors import AnthropicError, Headers
from ._faults import Fault, FaultKind
from ._http import Answer, Reply, Request, malformed, truncated
from ._sse import Framing, StreamPlan, json_event, stream_reply
from ._state import UsageKnobs

_PATH: Final = "/v1/messages"
_CONTENT_TYPE: Final = "application/json"
_STREAM_CONTENT_TYPE: Final = "text/event-stream; charset=utf-8"
_ID_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@final
class AnthropicRoutes:
    """Answers ``POST /v1/messages`` like the live Anthropic API.

    Args:
        key: The one API key accepted in ``x-api-key``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    @property
    def name(self) -> str:
        """The provider name: ``"anthropic"``."""
        return "anthropic"

    def owns(self, path: str) -> bool:
        """``/v1/messages`` and everything under it is Anthropic's; the rest of ``/v1/`` is not."""
        return path == _PATH or path.startswith(_PATH + "/")

    def handle(self, request: Request, knobs: UsageKnobs, fault: Fault | None) -> Answer:
        """Answer one request to the Messages API surface, suffering ``fault`` if given."""
        request_id = _new_id("req_011C", 20)
        kind = fault.kind if fault is not None else None
        if fault is not None and (failure := _fault_error(fault)) is not None:
            return _error(failure, request_id)
        if kind in (FaultKind.MALFORMED_JSON, FaultKind.TRUNCATED):
            lenient = fallback_request(request.body)
            if lenient.stream:
                return _stream(lenient, knobs, request_id, kind)
            reply = _success(lenient, knobs, request_id, usage=True)
            return malformed(reply) if kind is FaultKind.MALFORMED_JSON else truncated(reply)
        if request.path != _PATH:
            return _error(errors.path_not_found_error(), request_id)
        if request.method != "POST":
            failure = errors.method_not_allowed_error(request.method)
            return _error(failure, request_id, extra=(("allow", "POST"),))
        key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
        if not key:
            return _error(errors.missing_key_error(), request_id)
        # Constant-time compare: cheap, and the emulator should not model a timing oracle.
        if not secrets.compare_digest(key.encode(), self._key.encode()):
            return _error(errors.invalid_key_error(), request_id)
        version = request.headers.get("anthropic-version")
        if not version:
            return _error(errors.missing_version_error(), request_id)
        if version not in VERSIONS:
            return _error(errors.unknown_version_error(version), request_id)
        try:
            parsed = parse_request(request.body, version=version)
        except InvalidRequest as exc:
            return _error(errors.invalid_request_error(str(exc)), request_id)
        if not parsed.model.startswith("claude-"):
            return _error(errors.model_not_found_error(parsed.model), request_id)
        if parsed.stream:
            return _stream(parsed, knobs, request_id, kind)
        if kind is FaultKind.STREAM_ERROR:
            return _error(errors.overloaded_error(), request_id)
        reply = _success(parsed, knobs, request_id, usage=kind is not FaultKind.OMIT_USAGE)
        return truncated(reply) if kind is FaultKind.STREAM_CUT else reply


def _fault_error(fault: Fault) -> AnthropicError | None:
    if fault.kind is FaultKind.BAD_KEY:
        return errors.invalid_key_error()
    if fault.kind is FaultKind.RATE_LIMIT:
        return errors.rate_limit_error(fault.retry_after_s, datetime.now(UTC))
    if fault.kind is FaultKind.QUOTA_DAILY:
        # Anthropic has no daily quota; its quota that will not reset soon is the spend cap.
        return errors.spend_limit_error(datetime.now(UTC))
    if fault.kind is FaultKind.SERVER_ERROR:
        return errors.internal_error()
    if fault.kind is FaultKind.UNAVAILABLE:
        return errors.overloaded_error()
    return None


def _success(parsed: MessagesRequest, knobs: UsageKnobs, request_id: str, *, usage: bool) -> Reply:
    body = success_body(parsed, knobs, message_id=_new_id("msg_01", 22), include_usage=usage)
    # The live API reports the request bucket after this request: one used of fifty.
    limits = errors.rate_limit_headers(datetime.now(UTC), requests_left=49, reset_after_s=1.2)
    return _json(200, body, (*_common(request_id), *limits))


def _stream(
    parsed: MessagesRequest, knobs: UsageKnobs, request_id: str, kind: FaultKind | None
) -> Answer:
    events = stream_events(
        parsed,
        knobs,
        message_id=_new_id("msg_01", 22),
        include_usage=kind is not FaultKind.OMIT_USAGE,
    )
    plan = StreamPlan(
        body=tuple(json_event(data, name) for name, data in events),
        end=(json_event({"type": "message_stop"}, "message_stop"),),
        # Mid-stream overload arrives as an `error` event, with the request id as in a body.
        error=json_event(errors.overloaded_error().body(request_id), "error"),
        framing=Framing.SSE,
    )
    limits = errors.rate_limit_headers(datetime.now(UTC), requests_left=49, reset_after_s=1.2)
    headers = (*_common(request_id), *limits)
    return stream_reply(plan, kind, content_type=_STREAM_CONTENT_TYPE, headers=headers)


def _error(failure: AnthropicError, request_id: str, *, extra: Headers = ()) -> Reply:
    headers = (*_common(request_id), *failure.headers, *extra)
    return _json(failure.status, failure.body(request_id), headers)


def _common(request_id: str) -> Headers:
    return (("request-id", request_id), ("anthropic-organization-id", errors.ORGANIZATION_ID))


def _json(status: int, payload: Mapping[str, object], headers: Headers) -> Reply:
    # Anthropic answers compact JSON with a bare application/json content type.
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(status=status, body=body, content_type=_CONTENT_TYPE, headers=headers)


def _new_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _bearer(value: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header: current SDKs send the API key so."""
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None
