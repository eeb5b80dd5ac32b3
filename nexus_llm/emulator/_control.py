"""The control endpoint under ``/_emulator/``: faults, knobs and stats over plain HTTP.

It lets tests in another process (and people with curl) drive a running emulator. Errors are
``{"error": "<one line naming what was wrong and what is allowed>"}`` with status 400, 404 or
405, never a provider's envelope, so nobody mistakes them for emulated provider answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from ._http import Reply, Request, json_reply
from ._state import EmulatorState

PREFIX = "/_emulator/"

_FAULT_FIELDS = ("provider", "kind", "times", "retry_after_s", "delay_s")
_CONFIGURE_FIELDS = ("provider", "thoughts_tokens", "cached_tokens")

_Action = Callable[[Request, EmulatorState], Reply]


class _BadInput(ValueError):
    """A control request the endpoint refuses with 400 and this one-line message."""


def handle_control(request: Request, state: EmulatorState) -> Reply:
    """Answer one request to ``/_emulator/...``; never raises for bad input."""
    methods = _ENDPOINTS.get(request.path)
    if methods is None:
        return _refuse(404, f"unknown control endpoint {request.path}; available: {_SUMMARY}")
    action = methods.get(request.method)
    if action is None:
        allowed = ", ".join(methods)
        return _refuse(
            405,
            f"{request.method} is not allowed on {request.path}; use {allowed}",
            headers=(("allow", allowed),),
        )
    try:
        return action(request, state)
    except ValueError as exc:  # _BadInput and the state's own validation errors
        return _refuse(400, str(exc))


def _stats(request: Request, state: EmulatorState) -> Reply:
    return json_reply(200, state.stats())


def _add_fault(request: Request, state: EmulatorState) -> Reply:
    body = _json_object(request, _FAULT_FIELDS)
    if "provider" not in body or "kind" not in body:
        raise _BadInput(
            "POST /_emulator/faults needs 'provider' and 'kind', e.g. "
            '{"provider": "gemini", "kind": "rate_limit", "times": 2}'
        )
    fault = state.inject(
        body["provider"],
        body["kind"],
        times=body.get("times"),
        retry_after_s=body.get("retry_after_s", 2.0),
        delay_s=body.get("delay_s", 1.0),
    )
    return json_reply(200, fault.to_json())


def _clear_faults(request: Request, state: EmulatorState) -> Reply:
    provider = request.query.get("provider")
    cleared = state.clear_faults(None if provider is None else state.check_provider(provider))
    return json_reply(200, {"cleared": cleared})


def _configure(request: Request, state: EmulatorState) -> Reply:
    body = _json_object(request, _CONFIGURE_FIELDS)
    if "provider" not in body:
        raise _BadInput(
            "POST /_emulator/configure needs 'provider', e.g. "
            '{"provider": "gemini", "thoughts_tokens": 87, "cached_tokens": 5}'
        )
    provider = state.check_provider(body["provider"])
    knobs = state.configure(
        provider,
        thoughts_tokens=body.get("thoughts_tokens", 0),
        cached_tokens=body.get("cached_tokens", 0),
    )
    return json_reply(
        200,
        {
            "provider": provider,
            "thoughts_tokens": knobs.thoughts_tokens,
            "cached_tokens": knobs.cached_tokens,
        },
    )


def _reset(request: Request, state: EmulatorState) -> Reply:
    state.reset()
    return json_reply(200, {"reset": True})


def _json_object(request: Request, allowed: tuple[str, ...]) -> dict[str, object]:
    where = f"{request.method} {request.path}"
    try:
        body = json.loads(request.body.decode("utf-8")) if request.body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadInput(f"{where} needs a JSON object body; could not parse it: {exc}") from None
    if not isinstance(body, dict):
        raise _BadInput(f"{where} needs a JSON object body, got {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _BadInput(
            f"{where} got unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}"
        )
    return body


def _refuse(status: int, message: str, *, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return json_reply(status, {"error": message}, headers=headers)


_ENDPOINTS: Mapping[str, Mapping[str, _Action]] = {
    f"{PREFIX}stats": {"GET": _stats},
    f"{PREFIX}faults": {"POST": _add_fault, "DELETE": _clear_faults},
    f"{PREFIX}configure": {"POST": _configure},
    f"{PREFIX}reset": {"POST": _reset},
}
_SUMMARY = ", ".join(
    f"{method} {path}" for path, methods in _ENDPOINTS.items() for method in methods
)
