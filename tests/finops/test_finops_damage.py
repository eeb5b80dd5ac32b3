"""Damaged lines and lines from other writers: skipped and counted, or read, never a crash."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from nexus_llm.finops.report import build_report, render_markdown
from tests.finops.finops_support import (
    CALLS,
    FIRST,
    LAST,
    TOTAL_COST,
    Call,
    assert_same,
    comparable,
    row,
    write_calls,
)

CORRUPT = [
    b'{"ts":"2026-01-02T00:00:00.000Z","env":"test","provider":"gem',  # cut short, then newline
    b"not json at all",
    b"[1, 2, 3]",
    b'"a string"',
    b"42",
    b"null",
    b'{"ts":"2026-01-02T00:00:00.000Z"}',  # an object without the ledger's keys
    b'{"ts":"2026-01-02T00:00:00.000Z","provider":"gemini","model":"m","team":"ops",'
    b'"project":"p","purpose":"ops","actual_cost_usd":"0.5"}',  # a cost that is a string
    b"\xff\xfe\x00 not utf-8",
]


def _damaged_ledger(path: Path) -> None:
    """The hand-made ledger with corrupt lines and blank lines between its good lines, and a
    partial line (no newline) at the end."""
    write_calls(path, CALLS)
    good = path.read_bytes().splitlines(keepends=True)
    mixed: list[bytes] = []
    for n, line in enumerate(good):
        mixed.append(line)
        if n < len(CORRUPT):
            mixed.append(CORRUPT[n] + b"\n")
        if n == 3:
            mixed.append(b"\n")
    mixed.append(good[1][:-40])  # a write cut short: the last line has no newline
    path.write_bytes(b"".join(mixed))


class TestCorruptAndPartial:
    @pytest.mark.parametrize("use_rollups", [True, False], ids=["rollups", "scratch"])
    def test_damage_is_skipped_and_counted(self, tmp_path: Path, use_rollups: bool) -> None:
        """Corrupt, non-object and partial lines are skipped and counted; the totals stand."""
        path = tmp_path / "ledger.jsonl"
        _damaged_ledger(path)
        report = build_report(FIRST, LAST, [path], use_rollups=use_rollups)
        assert (report.calls, report.cost_usd) == (9, TOTAL_COST)
        assert report.skipped_corrupt == len(CORRUPT)
        assert report.skipped_partial == 1

    def test_damage_is_shown_in_the_markdown(self, tmp_path: Path) -> None:
        """The markdown's data-quality line states how many lines were skipped, and why."""
        path = tmp_path / "ledger.jsonl"
        _damaged_ledger(path)
        text = render_markdown(build_report(FIRST, LAST, [path], use_rollups=False))
        assert f"Skipped {len(CORRUPT)} corrupt and 1 partial ledger line(s)." in text

    def test_partial_line_counts_once_complete(self, tmp_path: Path) -> None:
        """A line still being written is skipped as partial, then counted once its newline lands."""
        path = tmp_path / "ledger.jsonl"
        write_calls(path, CALLS)
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:-2]) + lines[-2][:50])
        before = build_report(FIRST, LAST, [path])
        assert (before.calls, before.cost_usd, before.skipped_partial) == (8, 7.5, 1)
        with path.open("ab") as out:
            out.write(lines[-2][50:] + lines[-1])
        after = build_report(FIRST, LAST, [path])
        assert after.from_rollups == 1
        assert (after.calls, after.cost_usd, after.skipped_partial) == (9, TOTAL_COST, 0)

    def test_bad_number_in_the_ledgers_own_shape_is_corrupt(self, tmp_path: Path) -> None:
        """A line in the ledger's exact shape whose cost is not a number is counted as corrupt."""
        path = tmp_path / "ledger.jsonl"
        write_calls(path, CALLS)
        lines = path.read_bytes().splitlines(keepends=True)
        assert b'"actual_cost_usd":4.0,' in lines[5]
        lines[5] = lines[5].replace(b'"actual_cost_usd":4.0,', b'"actual_cost_usd":4.0.1,')
        path.write_bytes(b"".join(lines))
        report = build_report(FIRST, LAST, [path], use_rollups=False)
        assert (report.calls, report.cost_usd, report.skipped_corrupt) == (8, 5.0, 1)

    def test_crlf_line_endings_are_read(self, tmp_path: Path) -> None:
        """Lines ending in CRLF (a ledger that went through a Windows tool) are still counted."""
        path = tmp_path / "ledger.jsonl"
        write_calls(path, CALLS)
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
        report = build_report(FIRST, LAST, [path], use_rollups=False)
        assert (report.calls, report.cost_usd) == (9, TOTAL_COST)

    def test_a_line_longer_than_a_read_block(self, tmp_path: Path) -> None:
        """A 5 MiB line (longer than one 4 MiB read) is carried across blocks and counted."""
        path = tmp_path / "ledger.jsonl"
        written = write_calls(path, [Call("2026-01-01T10:00:00.000Z", cost=0.5)])
        huge = dict(written[0], note="x" * (5 << 20))
        with path.open("ab") as out:
            out.write(json.dumps(huge).encode() + b"\n")
        write_calls(tmp_path / "tail.jsonl", [Call("2026-01-02T10:00:00.000Z", cost=0.25)])
        with path.open("ab") as out:
            out.write((tmp_path / "tail.jsonl").read_bytes())
        report = build_report(FIRST, LAST, [path], use_rollups=False)
        assert (report.calls, report.cost_usd, report.skipped_corrupt) == (3, 1.25, 0)


class TestOtherWriters:
    def test_other_key_order_and_spacing_counts_the_same(self, tmp_path: Path) -> None:
        """Lines with keys reversed, spaces and ASCII escapes give the very same report."""
        ours, theirs = tmp_path / "ours.jsonl", tmp_path / "theirs.jsonl"
        records = write_calls(ours, CALLS)
        with theirs.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(dict(reversed(record.items())), ensure_ascii=True) + "\n")
        expected = comparable(build_report(FIRST, LAST, [ours], use_rollups=False))
        report = build_report(FIRST, LAST, [theirs], use_rollups=False)
        assert_same(comparable(report), expected)

    @pytest.mark.parametrize(
        ("written", "name"),
        [
            (r"mod\u00e8le-\u00fc", "modèle-ü"),
            (r"m\u0022quoted\u0022", 'm"quoted"'),
            (r"back\u005cslash", "back\\slash"),
        ],
        ids=["unicode-escape", "escaped-quote", "escaped-backslash"],
    )
    def test_escaped_model_name_counts_with_its_twin(
        self, tmp_path: Path, written: str, name: str
    ) -> None:
        """A model spelled with other JSON escapes by another writer joins the row of the same
        name as `CostLedger` wrote it."""
        path = tmp_path / "ledger.jsonl"
        records = write_calls(path, [Call("2026-01-01T10:00:00.000Z", model=name, cost=0.5)])
        line = json.dumps(records[0], ensure_ascii=False, separators=(",", ":"))
        encoded = json.dumps(name, ensure_ascii=False)
        foreign = line.replace(encoded, f'"{written}"')
        assert foreign != line
        assert json.loads(foreign)["model"] == name
        with path.open("a", encoding="utf-8") as out:
            out.write(foreign.replace('"actual_cost_usd":0.5', '"actual_cost_usd":0.25') + "\n")
        report = build_report(date(2026, 1, 1), date(2026, 1, 1), [path], use_rollups=False)
        assert [row(x) for x in report.breakdowns["model"]] == [(name, 2, 0.75, 0, 0)]
        assert report.skipped_corrupt == 0
