"""What every provider adapter offers: pure request building and response parsing.

Adapters know nothing of the client, the network or the files: they turn a `ChatRequest` into
an `HttpRequest` and an `HttpReply` into a `ProviderReply` or a typed `ProviderError`. That keeps
them testable with canned bytes and lets the sync and async clients share them.

Streaming stays sans-I/O too: the transport feeds body bytes to an `SSEDecoder`, each event to
the adapter's `StreamParser`, and asks the parser for the whole reply at end of stream.
"""

from __future__ import annotations

import json
from typing import Protocol

from ..config import ProviderSettings
from ..errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from ..types import ChatRequest, HttpReply, HttpRequest, ProviderReply, Usage
from .sse import SSEEvent


class StreamParser(Protocol):
    """The state of one streamed reply, fed event by event."""

    def feed(self, event: SSEEvent) -> list[str]:
        """The text deltas this event carries (possibly none).

        Raises the typed `ProviderError` an in-stream error event means, classified like the
        same error in a unary reply, and `MalformedResponseError` for an event it cannot read.
        """
        ...

    @property
    def done(self) -> bool:
        """Whether the provider's end marker was seen ([DONE], message_stop, a finishReason)."""
        ...

    def usage_so_far(self) -> Usage | None:
        """The usage the stream has carried so far (None: none yet). Before the end its output
        count may be short of the text already sent: the prompt side is what it is good for."""
        ...

    def finish(self) -> ProviderReply:
        """The whole reply at end of stream, mapped exactly as the unary parser maps it.

        `usage` is None when the stream carried none. Raises `MalformedResponseError` when the
        stream ended without its end marker (a truncated stream).
        """
        ...


class ProviderAdapter(Protocol):
    name: str

    def build_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest: ...

    def parse_reply(self, reply: HttpReply, *, model: str) -> ProviderReply:
        """Parse a reply of any status: a `ProviderReply` for success, else raise."""
        ...

    def build_stream_request(self, request: ChatRequest, settings: ProviderSettings) -> HttpRequest:
        """The streaming (SSE) form of `build_request`.

        A non-200 answer to it is an ordinary error body: read it whole and give it to
        `parse_reply`, which raises the typed error.
        """
        ...

    def new_stream_parser(self, *, model: str) -> StreamParser:
        """A fresh parser for one 200 stream; `model` names the reply when the stream does not."""
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


def event_json(data: str, *, provider: str) -> dict[str, object]:
    """The JSON object a stream event's data holds; anything else is a malformed stream."""
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise MalformedResponseError("a stream event is not a JSON object", provider=provider)
    return value


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
