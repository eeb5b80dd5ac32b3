"""The emulated Gemini API surface: routing, API-key check, faults, then ``generateContent``
and ``streamGenerateContent``.

Order per request (the server core has already counted it and done the wire-level faults):
a provider error fault answers at once, whatever the request; ``malformed_json`` and
``truncated`` answer 200 at once (a broken stream for ``streamGenerateContent``); otherwise
route, key, model and body are checked in that order, and the success reply drops
``usageMetadata`` under ``omit_usage``. ``streamGenerateContent?alt=sse`` streams Server-Sent
Events; without ``alt=sse`` it streams the JSON array the live API sends.
"""

from __future__ import annotations

import re
import secrets
from typing import final

from . import _gemini_errors as errors
from ._faults import Fault, FaultKind
from ._gemini import GenerateRequest, InvalidRequest, parse_request, stream_chunks, success_body
from ._gemini_errors import GoogleError
from ._http import Answer, Reply, Request, json_reply, malformed, truncated
from ._sse import Framing, StreamPlan, json_event, stream_reply
from ._state import UsageKnobs

_PREFIX = "/v1beta/"
_ROUTE = re.compile(r"/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)")
# A model the path did not name, for the fault bodies that must name one anyway.
_FALLBACK_MODEL = "gemini-2.5-flash"


@final
class GeminiRoutes:
    """Answers ``POST /v1beta/models/{model}:generateContent`` like the live Gemini API.

    Args:
        key: The one API key accepted, from ``x-goog-api-key`` or ``?key=``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    @property
    def name(self) -> str:
        """The provider name: ``"gemini"``."""
        return "gemini"

    def owns(self, path: str) -> bool:
        """Everything under ``/v1beta/`` is Gemini's, so its faults and counts apply there."""
        # google-genai defaults to `v1`, where OpenAI's routes live too: the `:action` suffix
        # of a `/v1/models/...` path is Gemini's alone.
        return path.startswith(_PREFIX) or _ROUTE.fullmatch(path) is not None

    def not_found(self, request: Request) -> Reply:
        """Answer a URL no emulated endpoint serves, in Google's envelope."""
        return _error(errors.path_not_found_error(request.path))

    def handle(self, request: Request, knobs: UsageKnobs, fault: Fault | None) -> Answer:
        """Answer one request to the Gemini API surface, suffering ``fault`` if given."""
        route = _ROUTE.fullmatch(request.path)
        model = route["model"] if route else _FALLBACK_MODEL
        kind = fault.kind if fault is not None else None
        streaming = route is not None and route["action"] == "streamGenerateContent"
        if fault is not None and (failure := _fault_error(fault, model)) is not None:
            return _error(failure)
        if kind in (FaultKind.MALFORMED_JSON, FaultKind.TRUNCATED):
            parsed = _lenient(request)
            if streaming:
                return _stream(request, model, parsed, knobs, kind)
            reply = _success(model, parsed, knobs, include_usage=True)
            return malformed(reply) if kind is FaultKind.MALFORMED_JSON else truncated(reply)
        if route is None or route["action"] not in ("generateContent", "streamGenerateContent"):
            return self.not_found(request)
        if request.method != "POST":
            return _error(
                errors.method_not_allowed_error(request.method, request.path),
                headers=(("allow", "POST"),),
            )
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return _error(errors.missing_key_error())
        # Constant-time compare: cheap, and the emulator should not model a timing oracle.
        if not secrets.compare_digest(key.encode(), self._key.encode()):
            return _error(errors.invalid_key_error())
        if not model.startswith("gemini-"):
            return _error(errors.model_not_found_error(model))
        try:
            parsed = parse_request(request.body)
        except InvalidRequest as exc:
            return _error(errors.invalid_argument_error(str(exc)))
        if streaming:
            return _stream(request, model, parsed, knobs, kind)
        if kind is FaultKind.STREAM_ERROR:
            return _error(_IN_STREAM_ERROR)
        reply = _success(model, parsed, knobs, include_usage=kind is not FaultKind.OMIT_USAGE)
        return truncated(reply) if kind is FaultKind.STREAM_CUT else reply


# What ``stream_error`` sends mid-stream (and answers a unary request with).
_IN_STREAM_ERROR = errors.unavailable_error()


def _lenient(request: Request) -> GenerateRequest:
    # The broken-200 faults skip validation, so fall back to an empty prompt if need be.
    try:
        return parse_request(request.body)
    except InvalidRequest:
        return GenerateRequest(prompt_tokens=0, max_output_tokens=None, json_mode=False)


def _stream(
    request: Request,
    model: str,
    parsed: GenerateRequest,
    knobs: UsageKnobs,
    kind: FaultKind | None,
) -> Answer:
    sse = request.query.get("alt") == "sse"
    chunks = stream_chunks(
        model,
        parsed,
        knobs,
        response_id=secrets.token_urlsafe(15),
        include_usage=kind is not FaultKind.OMIT_USAGE,
    )
    plan = StreamPlan(
        body=tuple(json_event(chunk) for chunk in chunks),
        end=(),  # Gemini has no end marker: the last chunk carries finishReason
        error=json_event(_IN_STREAM_ERROR.body()),
        framing=Framing.SSE_CRLF if sse else Framing.JSON_ARRAY,
    )
    content_type = "text/event-stream" if sse else "application/json; charset=UTF-8"
    return stream_reply(plan, kind, content_type=content_type)


def _fault_error(fault: Fault, model: str) -> GoogleError | None:
    if fault.kind is FaultKind.BAD_KEY:
        return errors.invalid_key_error()
    if fault.kind is FaultKind.RATE_LIMIT:
        return errors.rate_limit_error(model, fault.retry_after_s)
    if fault.kind is FaultKind.QUOTA_DAILY:
        return errors.daily_quota_error(model)
    if fault.kind is FaultKind.SERVER_ERROR:
        return errors.internal_error()
    if fault.kind is FaultKind.UNAVAILABLE:
        return errors.unavailable_error()
    return None


def _success(
    model: str, parsed: GenerateRequest, knobs: UsageKnobs, *, include_usage: bool
) -> Reply:
    # Real response ids are ~20 URL-safe characters; uniqueness is what clients may rely on.
    response_id = secrets.token_urlsafe(15)
    body = success_body(model, parsed, knobs, response_id=response_id, include_usage=include_usage)
    return json_reply(200, body)


def _error(error: GoogleError, *, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return json_reply(error.code, error.body(), headers=headers)
