"""The SSE decoder: WHATWG line and field rules, on bytes split at every possible place."""

from __future__ import annotations

import pytest

from nexus_llm.errors import MalformedResponseError
from nexus_llm.providers.sse import MAX_EVENT_SIZE, SSEDecoder, SSEEvent

# Three events, every line ending kind, a comment, a multi-line data, ignored id/retry fields
# and non-ASCII text (a 2-byte and a 4-byte UTF-8 sequence) to split inside.
STREAM = (
    b": keep-alive comment\r\n"
    b"event: message_start\r\n"
    b'data: {"a":1}\r\n'
    b"\r\n"
    b"id: 7\rretry: 100\r"
    b"data: first line\r"
    b"data:second line\r"
    b"\r"
    b"event: delta\n"
    b"data: caf\xc3\xa9 \xf0\x9f\x98\x80\n"
    b"\n"
)
EXPECTED = [
    SSEEvent("message_start", '{"a":1}'),
    SSEEvent("", "first line\nsecond line"),
    SSEEvent("delta", "café 😀"),
]


def _decode(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


class TestSplitting:
    def test_whole_stream(self) -> None:
        """The stream in one chunk yields each event once, in order."""
        assert _decode(STREAM) == EXPECTED

    @pytest.mark.parametrize("cut", range(1, len(STREAM)))
    def test_split_at_every_byte(self, cut: int) -> None:
        """A split anywhere (inside \\r\\n, a UTF-8 sequence, a field name) changes nothing."""
        assert _decode(STREAM[:cut], STREAM[cut:]) == EXPECTED

    def test_one_byte_at_a_time(self) -> None:
        """Feeding single bytes yields the same events as the whole stream."""
        assert _decode(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED

    def test_events_arrive_as_soon_as_their_blank_line_does(self) -> None:
        """An event is returned by the feed that completes it, not later."""
        decoder = SSEDecoder()
        assert decoder.feed(b"data: x\n") == []
        assert decoder.feed(b"\n") == [SSEEvent("", "x")]
        assert decoder.flush() == []

    def test_cr_then_lf_in_the_next_chunk_is_one_line_end(self) -> None:
        """A \\r closing one chunk and a \\n opening the next make one line end, not two."""
        assert _decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [SSEEvent("", "a\nb")]

    def test_cr_lf_split_across_an_empty_chunk(self) -> None:
        """An empty chunk between \\r and \\n does not break the pair."""
        assert _decode(b"data: a\r", b"", b"\ndata: b\n\n") == [SSEEvent("", "a\nb")]


class TestFields:
    def test_comments_are_ignored(self) -> None:
        """Lines starting with a colon are comments."""
        assert _decode(b":ping\n: another\ndata: x\n:\n\n") == [SSEEvent("", "x")]

    def test_only_one_leading_space_is_stripped(self) -> None:
        """`data:  x` keeps the second space; `data:x` needs none."""
        assert _decode(b"data:  x\n\ndata:y\n\n") == [SSEEvent("", " x"), SSEEvent("", "y")]

    def test_field_without_colon_has_empty_value(self) -> None:
        """A bare `data` line is a data line with an empty value."""
        assert _decode(b"data\ndata: x\n\n") == [SSEEvent("", "\nx")]

    def test_value_may_contain_colons(self) -> None:
        """Only the first colon separates the field name."""
        assert _decode(b'data: {"a": "b:c"}\n\n') == [SSEEvent("", '{"a": "b:c"}')]

    def test_unknown_fields_id_and_retry_are_ignored(self) -> None:
        """Fields other than event and data do not change the event."""
        assert _decode(b"id: 1\nretry: 5\nfoo: bar\ndata: x\n\n") == [SSEEvent("", "x")]

    def test_event_name_resets_after_dispatch(self) -> None:
        """An event name applies to one event only."""
        assert _decode(b"event: a\ndata: 1\n\ndata: 2\n\n") == [
            SSEEvent("a", "1"),
            SSEEvent("", "2"),
        ]

    def test_events_without_data_are_not_dispatched(self) -> None:
        """An event with no data (or only empty data) is dropped, its name with it."""
        assert _decode(b"event: a\n\nevent: b\ndata:\n\ndata: x\n\n") == [SSEEvent("", "x")]

    def test_leading_byte_order_mark_is_dropped(self) -> None:
        """A UTF-8 BOM at the very start is not part of the first field name."""
        assert _decode(b"\xef\xbb", b"\xbfdata: x\n\n") == [SSEEvent("", "x")]

    def test_invalid_utf8_becomes_replacement_character(self) -> None:
        """Undecodable bytes read as U+FFFD rather than failing the stream."""
        assert _decode(b"data: a\xffb\n\n") == [SSEEvent("", "a\ufffdb")]


class TestFlush:
    def test_pending_event_is_dispatched_at_eof(self) -> None:
        """A last event without its blank line is still delivered by flush."""
        decoder = SSEDecoder()
        assert decoder.feed(b"data: [DONE]\n") == []
        assert decoder.flush() == [SSEEvent("", "[DONE]")]

    def test_unterminated_last_line_is_read_at_eof(self) -> None:
        """A last line without any line end counts at flush."""
        assert _decode(b"event: e\ndata: x") == [SSEEvent("e", "x")]

    def test_flush_of_a_clean_stream_is_empty(self) -> None:
        """After a complete stream, flush has nothing to add."""
        decoder = SSEDecoder()
        decoder.feed(b"data: x\n\n")
        assert decoder.flush() == []

    def test_truncated_utf8_at_eof_is_replaced(self) -> None:
        """An incomplete UTF-8 sequence at end of stream reads as U+FFFD."""
        assert _decode(b"data: a\xc3") == [SSEEvent("", "a\ufffd")]


class TestBound:
    def test_default_bound_is_16_mib(self) -> None:
        """The default bound on one event is 16 MiB."""
        assert MAX_EVENT_SIZE == 16 * 1024 * 1024

    def test_event_under_the_bound_passes(self) -> None:
        """An event under the bound is delivered."""
        decoder = SSEDecoder(max_event_size=100)
        assert decoder.feed(b"data: " + b"x" * 90 + b"\n\n") == [SSEEvent("", "x" * 90)]

    def test_endless_line_raises(self) -> None:
        """A line that never ends stops being buffered at the bound."""
        decoder = SSEDecoder(provider="openai", max_event_size=1000)
        for _ in range(20):
            assert decoder.feed(b"data: " + b"x" * 44) == []
        with pytest.raises(MalformedResponseError) as caught:
            decoder.feed(b"x")
        assert caught.value.provider == "openai"
        assert caught.value.retryable

    def test_many_data_lines_raise(self) -> None:
        """Data lines accumulating past the bound raise, even though each line is short."""
        decoder = SSEDecoder(max_event_size=1000)
        for _ in range(99):  # 10 characters (9 and a joining newline) of data each
            assert decoder.feed(b"data: xxxxxxxxx\n") == []
        with pytest.raises(MalformedResponseError):
            decoder.feed(b"data: xxxxxxxxx\n")

    def test_comments_do_not_count(self) -> None:
        """Comments and dispatched events free their space: only one event is bounded."""
        decoder = SSEDecoder(max_event_size=100)
        for _ in range(100):
            assert decoder.feed(b": " + b"c" * 50 + b"\ndata: " + b"x" * 50 + b"\n\n") == [
                SSEEvent("", "x" * 50)
            ]

    def test_real_bound_on_a_large_event(self) -> None:
        """A single event over 16 MiB raises with the default bound."""
        decoder = SSEDecoder()
        assert decoder.feed(b"data: " + b"x" * (MAX_EVENT_SIZE - 6)) == []
        with pytest.raises(MalformedResponseError, match="larger than"):
            decoder.feed(b"x")
