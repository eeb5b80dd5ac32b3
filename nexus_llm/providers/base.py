"""What every provider adapter offers: pure request building and response parsing.

Adapters know nothing of the client, the network or the files: they turn a `ChatRequest` into
an `HttpRequest` and an `HttpReply` into a `ProviderReply` or a typed `ProviderError`. That keeps
them testable with canned bytes and lets the sync and async clients share them.
"""

from __future__ import annotations

import json
from typing import Protocol

from ..config import ProviderSettings
from ..errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply


class ProviderAdapter(Protocol):
    name: str

    def build_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest: ...

    def parse_reply(self, reply: HttpReply, *, model: str) -> ProviderReply:
        """Parse a reply of any status: a `ProviderReply` for success, else raise."""
        ...


_BY_STATUS: dict[int, type[ProviderError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: ServerError,
    409: ServerError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
    503: OverloadedError,
    529: OverloadedError,
}


def error_class_for_status(status: int) -> type[ProviderError]:
    """The error a bare HTTP status means when the body says nothing more."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else BadRequestError


def load_json_object(body: bytes) -> dict[str, object] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is rare for LLM APIs and ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def as_int(value: object) -> int:
    """A token count from JSON: missing, null or malformed counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    return 0
