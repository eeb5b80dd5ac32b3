"""Streamed bodies as pure functions: framing events for the wire and shaping them by fault.

Each provider builds the events of one successful stream (its JSON objects, in order) and the
error it would send mid-stream; this module frames them (Server-Sent Events with or without
event names, or Gemini's incremental JSON array) and applies the stream faults, so a cut, an
in-stream error or a broken event looks the same way for every provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import final

from ._faults import FaultKind
from ._http import StreamReply

# A word and the whitespace after it: "Emulated gemini reply" -> "Emulated ", "gemini ", ...
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


class Framing(Enum):
    """How events are put on the wire."""

    SSE = "\n"  # ``data: ...\n\n``, OpenAI, GLM and Anthropic (with ``event:`` lines)
    SSE_CRLF = "\r\n"  # ``data: ...\r\n\r\n``, as Google sends it
    JSON_ARRAY = "array"  # ``[{...},\r\n{...}]``: Gemini's streamGenerateContent without alt=sse


@final
@dataclass(frozen=True, slots=True)
class Event:
    """One event: its data (compact JSON, or a sentinel such as ``[DONE]``) and its name."""

    data: str
    name: str | None = None


@final
@dataclass(frozen=True, slots=True)
class StreamPlan:
    """Everything a provider could stream for one request.

    Args:
        body: The events of the answer, in order; faults cut the stream inside it.
        end: The events that mark a finished stream (``[DONE]``, ``message_stop``), if any.
        error: The provider's in-stream error, sent by ``stream_error`` instead of the rest.
        framing: How the events are framed.
    """

    body: tuple[Event, ...]
    end: tuple[Event, ...]
    error: Event
    framing: Framing


def json_event(payload: Mapping[str, object], name: str | None = None) -> Event:
    """An event whose data is ``payload`` as one line of compact JSON."""
    return Event(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), name)


def split_words(text: str) -> list[str]:
    """``text`` as the deltas of a stream, one word (with its trailing space) each.

    Joined, the pieces give back ``text`` exactly; an empty text gives no pieces.
    """
    return [piece for piece in _WORD_START.split(text) if piece]


def stream_reply(
    plan: StreamPlan,
    kind: FaultKind | None,
    *,
    content_type: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> StreamReply:
    """The 200 streamed reply of ``plan``, suffering the fault ``kind`` if it is a stream one.

    Under ``stream_cut`` the reply says ``Connection: close`` and the connection closes after
    the cut, as when a front end ends a stream whose upstream died.
    """
    pieces, complete = shape(plan, kind)
    if kind is FaultKind.STREAM_CUT:
        headers = (*headers, ("connection", "close"))
    return StreamReply(pieces, content_type=content_type, headers=headers, complete=complete)


def shape(plan: StreamPlan, kind: FaultKind | None) -> tuple[tuple[bytes, ...], bool]:
    """The pieces to send for ``plan`` under ``kind``, and whether the HTTP body completes.

    ``stream_cut`` stops after half the body events (at least one): the HTTP body ends
    cleanly, but the stream lacks its end (``[DONE]``, ``message_stop``, a closing ``]``, or for
    Gemini's SSE the chunk with ``finishReason``); ``stream_error`` sends that same half, then
    the error, and ends there; ``truncated`` stops halfway through the bytes, mid-event, and
    leaves the HTTP body unfinished; ``malformed_json`` halves the data of the event
    ``stream_cut`` would stop before.
    """
    cut = max(1, len(plan.body) // 2)
    if kind is FaultKind.STREAM_CUT:
        return encode(plan.body[:cut], plan.framing, closed=False), True
    if kind is FaultKind.STREAM_ERROR:
        return encode((*plan.body[:cut], plan.error), plan.framing, closed=True), True
    body = list(plan.body)
    if kind is FaultKind.MALFORMED_JSON and body:
        broken = body[min(cut, len(body) - 1)]
        body[min(cut, len(body) - 1)] = Event(broken.data[: len(broken.data) // 2], broken.name)
    pieces = encode((*body, *plan.end), plan.framing, closed=True)
    if kind is FaultKind.TRUNCATED:
        return _first_half(pieces), False
    return pieces, True


def encode(events: Sequence[Event], framing: Framing, *, closed: bool) -> tuple[bytes, ...]:
    """One piece per event; a closed JSON array gets its ``]`` as a last piece of its own."""
    if framing is Framing.JSON_ARRAY:
        pieces = [
            ("[" if index == 0 else ",\r\n").encode() + event.data.encode("utf-8")
            for index, event in enumerate(events)
        ]
        if closed:
            pieces.append(b"]" if pieces else b"[]")
        return tuple(pieces)
    newline = framing.value
    return tuple(
        (
            (f"event: {event.name}{newline}" if event.name else "")
            + f"data: {event.data}{newline}{newline}"
        ).encode("utf-8")
        for event in events
    )


def _first_half(pieces: Sequence[bytes]) -> tuple[bytes, ...]:
    left = sum(len(piece) for piece in pieces) // 2
    kept: list[bytes] = []
    for piece in pieces:
        if left <= 0:
            break
        kept.append(piece[:left])
        left -= len(piece)
    return tuple(kept)
