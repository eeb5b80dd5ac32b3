"""JSON Lines: atomic appends from many processes, and a reader that survives damage."""

from __future__ import annotations

import gzip
import json
import multiprocessing
from collections.abc import Callable
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from nexus_llm.observe.audit import AuditLog
from nexus_llm.observe.jsonl import (
    JsonlAppender,
    ReadStats,
    encode_line,
    expand_sources,
    iter_records,
    read_records,
)
from nexus_llm.observe.ledger import CostLedger, LedgerEntry

WRITERS = 4
LINES_PER_WRITER = 2_000
SMALL_LINES_PER_WRITER = 300


def _context() -> ForkContext | SpawnContext:
    # fork is much faster to start; spawn keeps the test running where fork is unavailable.
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _pad_len(writer: int, seq: int) -> int:
    """Varying record sizes: mostly small, every 7th line well over 4 KiB (up to ~12 KiB)."""
    if seq % 7 == 0:
        return 4_500 + (seq * 131 + writer * 977) % 7_500
    return (seq * 37 + writer * 11) % 400


def _pad(writer: int, seq: int) -> str:
    # Distinct letter per writer so a torn line mixing two writers' bytes would be visible.
    return "abcdefgh"[writer] * _pad_len(writer, seq)


def _append_many(path: str, writer: int, count: int, barrier: Barrier) -> None:
    out = JsonlAppender(path)
    barrier.wait()
    for seq in range(count):
        out.append({"writer": writer, "seq": seq, "pad": _pad(writer, seq)})


def _audit_many(path: str, writer: int, count: int, barrier: Barrier) -> None:
    log = AuditLog(path, env="test")
    barrier.wait()
    for seq in range(count):
        log.emit("llm_success", request_id=f"{writer}-{seq}", pad=_pad(writer, seq))


def _ledger_many(path: str, writer: int, count: int, barrier: Barrier) -> None:
    ledger = CostLedger(path, env="test")
    barrier.wait()
    for seq in range(count):
        ledger.append(
            LedgerEntry(
                request_id=f"{writer}-{seq}",
                provider="gemini",
                model="gemini-2.5-flash",
                team="t" * (1 + _pad_len(writer, seq) % 64),
                project=_pad(writer, seq),
                purpose="load",
                input_tokens=seq,
                output_tokens=writer,
                cached_tokens=0,
                reasoning_tokens=0,
                actual_cost_usd=0.000001 * seq,
                approx_tokens=False,
                price_version="test",
            )
        )


Writer = Callable[[str, int, int, Barrier], None]


def _run_writers(target: Writer, path: Path, count: int) -> None:
    ctx = _context()
    barrier = ctx.Barrier(WRITERS)
    procs = [
        ctx.Process(target=target, args=(str(path), writer, count, barrier))
        for writer in range(WRITERS)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * WRITERS


def _raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the file must end with a complete line"
    return data.split(b"\n")[:-1]


class TestConcurrentAppends:
    """Many processes appending to one file never tear or lose a line."""

    def test_jsonl_appender_from_many_processes(self, tmp_path: Path) -> None:
        """4 processes x 2,000 lines (some > 4 KiB): every line present once, whole, parseable."""
        path = tmp_path / "shared" / "load.jsonl"
        _run_writers(_append_many, path, LINES_PER_WRITER)
        lines = _raw_lines(path)
        assert len(lines) == WRITERS * LINES_PER_WRITER
        seen: set[tuple[int, int]] = set()
        big = 0
        switches = 0
        previous = -1
        for raw in lines:
            record = json.loads(raw)  # a torn line would not parse
            key = (record["writer"], record["seq"])
            switches += key[0] != previous
            previous = key[0]
            assert key not in seen, f"duplicate line {key}"
            seen.add(key)
            assert record["pad"] == _pad(*key), f"line {key} was torn or mixed"
            big += len(raw) > 4_096
        assert seen == {(w, s) for w in range(WRITERS) for s in range(LINES_PER_WRITER)}
        assert big >= WRITERS * (LINES_PER_WRITER // 7)
        # The writers really ran at the same time (thousands of switches in practice).
        assert switches >= WRITERS * 4
        records, stats = read_records([path])
        assert len(records) == WRITERS * LINES_PER_WRITER
        assert stats.skipped == 0

    def test_each_writer_keeps_its_own_order(self, tmp_path: Path) -> None:
        """Within one writer, lines appear in the order that writer appended them."""
        path = tmp_path / "order.jsonl"
        _run_writers(_append_many, path, SMALL_LINES_PER_WRITER)
        by_writer: dict[int, list[int]] = {}
        for raw in _raw_lines(path):
            record = json.loads(raw)
            by_writer.setdefault(record["writer"], []).append(record["seq"])
        for seqs in by_writer.values():
            assert seqs == list(range(SMALL_LINES_PER_WRITER))

    def test_audit_log_from_many_processes(self, tmp_path: Path) -> None:
        """AuditLog.emit from 4 processes: every event present once and parseable."""
        path = tmp_path / "audit.jsonl"
        _run_writers(_audit_many, path, SMALL_LINES_PER_WRITER)
        lines = _raw_lines(path)
        assert len(lines) == WRITERS * SMALL_LINES_PER_WRITER
        ids = [json.loads(raw)["request_id"] for raw in lines]
        assert sorted(ids) == sorted(
            f"{w}-{s}" for w in range(WRITERS) for s in range(SMALL_LINES_PER_WRITER)
        )
        for raw in lines:
            record = json.loads(raw)
            writer, seq = map(int, record["request_id"].split("-"))
            assert record["pad"] == _pad(writer, seq)
            assert record["event"] == "llm_success"

    def test_cost_ledger_from_many_processes(self, tmp_path: Path) -> None:
        """CostLedger.append from 4 processes: every line present once and parseable."""
        path = tmp_path / "ledger.jsonl"
        _run_writers(_ledger_many, path, SMALL_LINES_PER_WRITER)
        lines = _raw_lines(path)
        assert len(lines) == WRITERS * SMALL_LINES_PER_WRITER
        ids = set()
        for raw in lines:
            record = json.loads(raw)
            writer, seq = map(int, record["request_id"].split("-"))
            assert record["project"] == _pad(writer, seq)
            assert record["input_tokens"] == seq
            ids.add((writer, seq))
        assert len(ids) == WRITERS * SMALL_LINES_PER_WRITER


class TestAppender:
    """JsonlAppender writes whole, compact lines."""

    def test_creates_parent_directories(self, tmp_path: Path) -> None:
        """The first append creates missing parent directories."""
        path = tmp_path / "a" / "b" / "c" / "log.jsonl"
        JsonlAppender(path).append({"k": 1})
        assert path.read_bytes() == b'{"k":1}\n'

    def test_appends_not_truncates(self, tmp_path: Path) -> None:
        """Appending to an existing file keeps its lines."""
        path = tmp_path / "log.jsonl"
        path.write_bytes(b'{"old":true}\n')
        JsonlAppender(path).append({"new": True})
        assert path.read_bytes() == b'{"old":true}\n{"new":true}\n'

    def test_picks_up_rotation(self, tmp_path: Path) -> None:
        """After the file is renamed away, the next append starts a new file."""
        path = tmp_path / "log.jsonl"
        out = JsonlAppender(path)
        out.append({"n": 1})
        path.rename(tmp_path / "log.jsonl.1")
        out.append({"n": 2})
        assert path.read_bytes() == b'{"n":2}\n'

    def test_encode_line_is_one_utf8_line(self) -> None:
        """A record with newlines and non-ASCII text encodes to exactly one UTF-8 line."""
        line = encode_line({"text": "a\nb — 日志"})
        assert line.count(b"\n") == 1
        assert line.endswith(b"\n")
        assert json.loads(line) == {"text": "a\nb — 日志"}
        assert "日志".encode() in line

    def test_encode_line_rejects_nan(self) -> None:
        """NaN is not JSON and is refused rather than written."""
        with pytest.raises(ValueError, match="JSON"):
            encode_line({"cost": float("nan")})


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class TestTolerantReader:
    """Readers skip and count damage instead of failing."""

    def test_partial_last_line_is_skipped_and_counted(self, tmp_path: Path) -> None:
        """A last line without its newline is skipped and counted as partial."""
        path = _write(tmp_path / "x.jsonl", b'{"a":1}\n{"a":2}\n{"a":3')
        records, stats = read_records([path])
        assert records == [{"a": 1}, {"a": 2}]
        assert stats.skipped_partial == 1
        assert stats.skipped_corrupt == 0
        assert stats.lines == 3

    def test_complete_json_without_newline_is_still_partial(self, tmp_path: Path) -> None:
        """A last line that parses but lacks a newline may be cut short; it is not trusted."""
        path = _write(tmp_path / "x.jsonl", b'{"a":1}\n{"a":2}')
        records, stats = read_records([path])
        assert records == [{"a": 1}]
        assert stats.skipped_partial == 1

    @pytest.mark.parametrize(
        "bad",
        [b"{not json}", b"[1, 2, 3]", b'"a string"', b"42", b"null", b'{"a":', b"\xff\xfe{}"],
    )
    def test_corrupt_and_non_object_lines_are_counted(self, tmp_path: Path, bad: bytes) -> None:
        """A line that does not parse, or is not a JSON object, is skipped as corrupt."""
        path = _write(tmp_path / "x.jsonl", b'{"a":1}\n' + bad + b'\n{"a":2}\n')
        records, stats = read_records([path])
        assert records == [{"a": 1}, {"a": 2}]
        assert stats.skipped_corrupt == 1
        assert stats.skipped_partial == 0
        assert stats.skipped == 1
        assert "1 corrupt" in stats.describe()

    def test_blank_lines_are_ignored(self, tmp_path: Path) -> None:
        """Empty and whitespace-only lines are neither records nor damage."""
        path = _write(tmp_path / "x.jsonl", b'\n{"a":1}\n\n   \n\r\n{"a":2}\n')
        records, stats = read_records([path])
        assert records == [{"a": 1}, {"a": 2}]
        assert stats.skipped == 0
        assert stats.lines == 2
        assert "none skipped" in stats.describe()

    def test_missing_file_reads_as_empty(self, tmp_path: Path) -> None:
        """A path that does not exist yields no records and no files."""
        records, stats = read_records([tmp_path / "absent.jsonl"])
        assert records == []
        assert stats.files == []

    def test_iter_records_fills_given_stats(self, tmp_path: Path) -> None:
        """iter_records updates the ReadStats passed in as it goes."""
        path = _write(tmp_path / "x.jsonl", b'{"a":1}\nbad\n{"a":2')
        stats = ReadStats()
        records = list(iter_records([path], stats))
        assert records == [{"a": 1}]
        assert (stats.skipped_corrupt, stats.skipped_partial) == (1, 1)
        assert stats.files == [path]
        assert "1 corrupt and 1 partial" in stats.describe()


def _line(tag: str) -> bytes:
    return encode_line({"from": tag})


class TestRotatedFiles:
    """A plain path also reads its logrotate siblings, oldest first."""

    def test_numbered_rotations_oldest_first(self, tmp_path: Path) -> None:
        """x.jsonl.2.gz, then x.jsonl.1, then x.jsonl."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        _write(tmp_path / "x.jsonl.1", _line("one"))
        with gzip.open(tmp_path / "x.jsonl.2.gz", "wb") as handle:
            handle.write(_line("two-gz"))
        records, stats = read_records([base])
        assert [r["from"] for r in records] == ["two-gz", "one", "current"]
        assert len(stats.files) == 3

    def test_numbered_rotations_compare_as_numbers(self, tmp_path: Path) -> None:
        """x.jsonl.10 is older than x.jsonl.9 (numeric, not string, order)."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        for n in (1, 2, 9, 10):
            _write(tmp_path / f"x.jsonl.{n}", _line(str(n)))
        records, _ = read_records([base])
        assert [r["from"] for r in records] == ["10", "9", "2", "1", "current"]

    def test_dated_rotations_oldest_first(self, tmp_path: Path) -> None:
        """logrotate dateext files (x.jsonl-YYYYMMDD) are read in date order, oldest first."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        _write(tmp_path / "x.jsonl-20260101", _line("2026-01-01"))
        _write(tmp_path / "x.jsonl-20260201", _line("2026-02-01"))
        _write(tmp_path / "x.jsonl-20251215", _line("2025-12-15"))
        records, _ = read_records([base])
        assert [r["from"] for r in records] == [
            "2025-12-15",
            "2026-01-01",
            "2026-02-01",
            "current",
        ]

    def test_dashed_dated_rotations_oldest_first(self, tmp_path: Path) -> None:
        """Dated rotations written with dashes (x.jsonl-YYYY-MM-DD) read oldest first."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        _write(tmp_path / "x.jsonl-2026-02-01", _line("feb"))
        _write(tmp_path / "x.jsonl-2026-01-01.gz", gzip.compress(_line("jan")))
        records, _ = read_records([base])
        assert [r["from"] for r in records] == ["jan", "feb", "current"]

    def test_all_rotation_shapes_are_read_and_current_is_last(self, tmp_path: Path) -> None:
        """Numbered, gzipped and dated rotations are all read, the live file last."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        _write(tmp_path / "x.jsonl.1", _line("one"))
        _write(tmp_path / "x.jsonl.2.gz", gzip.compress(_line("two-gz")))
        _write(tmp_path / "x.jsonl-20260101", _line("dated"))
        records, stats = read_records([base])
        order = [str(r["from"]) for r in records]
        assert sorted(order) == ["current", "dated", "one", "two-gz"]
        assert order[-1] == "current"
        assert order.index("two-gz") < order.index("one")
        assert stats.skipped == 0

    def test_truncated_gzip_rotation_is_tolerated(self, tmp_path: Path) -> None:
        """A .gz rotation cut short (logrotate still compressing) is counted, not fatal."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        whole = gzip.compress(b"".join(_line(f"old-{n}") for n in range(2_000)))
        _write(tmp_path / "x.jsonl.1.gz", whole[: len(whole) // 2])
        records, stats = read_records([base])
        assert records[-1] == {"from": "current"}
        assert stats.skipped >= 1

    def test_corrupt_gzip_rotation_is_tolerated(self, tmp_path: Path) -> None:
        """A .gz rotation that is not gzip at all is counted as damage, not fatal."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        _write(tmp_path / "x.jsonl.1.gz", b"this is not gzip\n")
        records, stats = read_records([base])
        assert records == [{"from": "current"}]
        assert stats.skipped >= 1

    def test_state_files_beside_the_log_are_not_read(self, tmp_path: Path) -> None:
        """x.jsonl.rollup.json, x.jsonl.lock and similar siblings are never read as rotations."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        _write(tmp_path / "x.jsonl.rollup.json", _line("rollup"))
        _write(tmp_path / "x.jsonl.lock", _line("lock"))
        _write(tmp_path / "x.jsonl.tmp", _line("tmp"))
        _write(tmp_path / "x.jsonl-state.json", _line("state"))
        _write(tmp_path / "x.jsonlx", _line("other-file"))
        _write(tmp_path / "y.jsonl.1", _line("other-log"))
        records, stats = read_records([base])
        assert [r["from"] for r in records] == ["current"]
        assert stats.files == [base]

    def test_rotations_can_be_turned_off(self, tmp_path: Path) -> None:
        """rotated=False reads only the named file."""
        base = tmp_path / "x.jsonl"
        _write(base, _line("current"))
        _write(tmp_path / "x.jsonl.1", _line("one"))
        records, _ = read_records([base], rotated=False)
        assert [r["from"] for r in records] == ["current"]

    def test_rotations_read_even_when_live_file_is_missing(self, tmp_path: Path) -> None:
        """Right after a rotation, the rotated file is read although x.jsonl does not exist."""
        _write(tmp_path / "x.jsonl.1", _line("one"))
        records, _ = read_records([tmp_path / "x.jsonl"])
        assert [r["from"] for r in records] == ["one"]


class TestGlobs:
    """Sources may be globs; each file is read once."""

    def test_glob_reads_matches_in_name_order(self, tmp_path: Path) -> None:
        """A glob reads every matching file, sorted by name."""
        _write(tmp_path / "b.jsonl", _line("b"))
        _write(tmp_path / "a.jsonl", _line("a"))
        _write(tmp_path / "c.txt", _line("c"))
        records, stats = read_records([str(tmp_path / "*.jsonl")])
        assert [r["from"] for r in records] == ["a", "b"]
        assert len(stats.files) == 2

    def test_overlapping_sources_read_each_file_once(self, tmp_path: Path) -> None:
        """A file named both directly and through a glob is read once."""
        path = _write(tmp_path / "a.jsonl", _line("a"))
        records, _ = read_records([path, str(tmp_path / "*.jsonl"), path])
        assert [r["from"] for r in records] == ["a"]

    def test_expand_sources_skips_directories(self, tmp_path: Path) -> None:
        """A glob matching a directory does not yield it."""
        (tmp_path / "dir.jsonl").mkdir()
        path = _write(tmp_path / "a.jsonl", _line("a"))
        assert expand_sources([str(tmp_path / "*.jsonl")]) == [path]
