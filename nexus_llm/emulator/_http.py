"""The seam between the HTTP server core and the handlers: request and reply values.

Handlers (one module per provider, plus the control endpoint) are plain functions from a
``Request`` to a ``Reply``; only the server core touches sockets, so handlers stay testable
without a network and every provider gets keep-alive, slow and dropped connections for free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, final

from ._faults import Fault
from ._state import UsageKnobs

JSON_UTF8 = "application/json; charset=UTF-8"


@final
@dataclass(frozen=True, slots=True)
class Request:
    """One complete HTTP request as the server read it.

    Args:
        method: Upper-case method, e.g. ``"POST"``.
        path: The percent-decoded path, without the query string.
        query: Query parameters; the last value wins when a name repeats.
        headers: Header values keyed by lower-case name; the last value wins.
        body: The raw request body.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


@final
@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response for the server core to put on the wire.

    Args:
        status: HTTP status code.
        body: The full body; ``Content-Length`` is always its length.
        content_type: The ``Content-Type`` header.
        headers: Extra headers, e.g. ``Allow`` on a 405.
        cut_at: When set, send only this many body bytes and then close the connection, so the
            client sees fewer bytes than ``Content-Length`` promised (the ``truncated`` fault).
    """

    status: int
    body: bytes
    content_type: str = JSON_UTF8
    headers: tuple[tuple[str, str], ...] = ()
    cut_at: int | None = None


@final
@dataclass(frozen=True, slots=True)
class StreamReply:
    """One streamed 200 response: a body sent in pieces, each written and flushed on its own.

    The server core sends it with chunked transfer encoding (one HTTP chunk per piece), so a
    client sees every piece as a separate read.

    Args:
        pieces: The body, in the pieces to send.
        content_type: The ``Content-Type`` header.
        headers: Extra headers, e.g. a request id.
        complete: When False, close the connection after the pieces without HTTP's last chunk,
            so the client sees a body that stops short (``truncated`` on a stream).
    """

    pieces: tuple[bytes, ...]
    content_type: str = "text/event-stream"
    headers: tuple[tuple[str, str], ...] = ()
    complete: bool = True
    status: int = 200


Answer = Reply | StreamReply


def json_reply(
    status: int, payload: Mapping[str, object], *, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    """Return ``payload`` as a pretty-printed UTF-8 JSON reply, as Google's front ends send."""
    body = json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")
    return Reply(status=status, body=body, headers=headers)


def malformed(reply: Reply) -> Reply:
    """Return ``reply`` with its body cut in half: a complete HTTP message, broken JSON."""
    return Reply(status=reply.status, body=reply.body[: len(reply.body) // 2])


def truncated(reply: Reply) -> Reply:
    """Return ``reply`` marked to stop after half its body, short of ``Content-Length``."""
    return Reply(status=reply.status, body=reply.body, cut_at=len(reply.body) // 2)


class ProviderRoutes(Protocol):
    """What the server core needs from one emulated provider."""

    @property
    def name(self) -> str:
        """The provider name used by faults, knobs and counts, e.g. ``"gemini"``."""
        ...

    def owns(self, path: str) -> bool:
        """Return whether requests to ``path`` belong to this provider's API surface."""
        ...

    def handle(self, request: Request, knobs: UsageKnobs, fault: Fault | None) -> Answer:
        """Answer ``request``; ``fault`` is the provider-level fault to suffer, if any.

        The server core has already counted the request and applied the wire-level part of the
        fault (``slow``, ``timeout``, ``reset``); everything else is the handler's job,
        including answering a streaming request with a ``StreamReply``.
        """
        ...
