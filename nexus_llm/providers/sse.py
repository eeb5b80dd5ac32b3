"""A sans-I/O decoder for `text/event-stream` bodies (Server-Sent Events).

It follows the WHATWG event-stream interpretation rules with three deliberate differences that
suit LLM streams: an event without a name keeps `event == ""` (no "message" substitution), an
event whose data is empty is never dispatched, and at end of stream a pending event that lacks
its blank line is still dispatched (a server that closes right after its last `data:` line has
said all it meant to). `id` and `retry` fields are read and ignored.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final

from ..errors import MalformedResponseError

# One event (its unfinished line plus the data gathered so far) may not buffer more than this.
MAX_EVENT_SIZE: Final = 16 * 1024 * 1024
_LINE_END: Final = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name ("" when the stream gave none) and its data."""

    event: str
    data: str


class SSEDecoder:
    """Turn the bytes of an event stream, split anywhere, into `SSEEvent`s.

    Args:
        provider: named in the `MalformedResponseError` an oversized event raises.
        max_event_size: the bound on one event, in decoded characters (bytes for ASCII JSON).

    Feed every chunk to `feed`, then call `flush` once at end of stream. After it has raised,
    a decoder is in an undefined state: abandon the stream.
    """

    def __init__(self, *, provider: str = "unknown", max_event_size: int = MAX_EVENT_SIZE) -> None:
        self._provider = provider
        self._max = max_event_size
        # Invalid UTF-8 becomes U+FFFD, as the spec's "UTF-8 decode" does.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # a leading byte-order mark is dropped once
        self._skip_lf = False  # the last chunk ended in "\r": a "\n" opening the next is its pair
        self._line: list[str] = []  # the unfinished line, in pieces
        self._line_size = 0
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by this chunk, in order (often none)."""
        return self._text(self._decoder.decode(chunk))

    def flush(self) -> list[SSEEvent]:
        """End of stream: the events still pending, the last one without its blank line too."""
        events = self._text(self._decoder.decode(b"", final=True))
        if self._line:
            self._process_line()
        events.extend(self._dispatch())
        return events

    def _text(self, text: str) -> list[SSEEvent]:
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        events: list[SSEEvent] = []
        start = 0
        for end in _LINE_END.finditer(text):
            self._append(text[start : end.start()])
            events.extend(self._process_line())
            start = end.end()
        if text.endswith("\r"):
            self._skip_lf = True
        self._append(text[start:])
        return events

    def _append(self, piece: str) -> None:
        if not piece:
            return
        self._line.append(piece)
        self._line_size += len(piece)
        self._check_size()

    def _check_size(self) -> None:
        if self._line_size + self._data_size > self._max:
            raise MalformedResponseError(
                f"a stream event is larger than {self._max} characters",
                provider=self._provider,
            )

    def _process_line(self) -> list[SSEEvent]:
        line = "".join(self._line)
        self._line.clear()
        self._line_size = 0
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return []
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            self._check_size()
        return []

    def _dispatch(self) -> list[SSEEvent]:
        data = "\n".join(self._data)
        event = self._event
        self._event = ""
        self._data.clear()
        self._data_size = 0
        return [SSEEvent(event=event, data=data)] if data else []
