"""Several ledgers: --ledger repeated, globs, rotated siblings, compressed and damaged archives."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from nexus_llm.finops.report import Report, build_report
from tests.finops.finops_support import Call, assert_same, comparable, write_calls

JAN = (date(2026, 1, 1), date(2026, 1, 31))


def _one_call(path: Path, day: int, cost: float, team: str = "ops") -> None:
    write_calls(path, [Call(f"2026-01-{day:02d}T12:00:00.000Z", cost=cost, team=team)])


def _costs_by_day(report: Report) -> dict[str, float]:
    return {d.name: d.cost_usd for d in report.daily if d.calls}


@pytest.fixture
def rotated(tmp_path: Path) -> Path:
    """x.jsonl with logrotate's siblings: .2.gz (oldest), .1, and a dated one."""
    base = tmp_path / "x.jsonl"
    _one_call(tmp_path / "tmp.jsonl", 1, 1.0)
    (tmp_path / "x.jsonl.2.gz").write_bytes(gzip.compress((tmp_path / "tmp.jsonl").read_bytes()))
    (tmp_path / "tmp.jsonl").unlink()
    _one_call(tmp_path / "x.jsonl.1", 2, 2.0)
    _one_call(tmp_path / "x.jsonl-20260103", 3, 4.0)
    _one_call(base, 4, 8.0)
    _one_call(tmp_path / "x.jsonl.state", 5, 1000.0)  # not a rotation: never read
    return base


class TestSeveralFiles:
    def test_ledger_repeated(self, tmp_path: Path) -> None:
        """Two --ledger paths are both read and their sums merged, by day and by team."""
        a, b = tmp_path / "a" / "ledger.jsonl", tmp_path / "b" / "ledger.jsonl"
        _one_call(a, 1, 0.5, team="ops")
        _one_call(b, 1, 0.25, team="search")
        _one_call(b, 2, 1.0, team="ops")
        report = build_report(*JAN, [a, b])
        assert report.sources == [str(a), str(b)]
        assert (report.calls, report.cost_usd) == (3, 1.75)
        assert _costs_by_day(report) == {"2026-01-01": 0.75, "2026-01-02": 1.0}
        assert [(x.name, x.cost_usd) for x in report.breakdowns["team"]] == [
            ("ops", 1.5),
            ("search", 0.25),
        ]

    def test_glob(self, tmp_path: Path) -> None:
        """A glob reads every file it matches, in name order."""
        for n, cost in enumerate([0.5, 0.25, 2.0], start=1):
            _one_call(tmp_path / f"node{n}.jsonl", n, cost)
        report = build_report(*JAN, [str(tmp_path / "node*.jsonl")])
        assert [Path(s).name for s in report.sources] == [
            "node1.jsonl",
            "node2.jsonl",
            "node3.jsonl",
        ]
        assert report.cost_usd == 2.75

    def test_the_same_file_twice_counts_once(self, tmp_path: Path) -> None:
        """A file named by a path and by a glob too is read once."""
        path = tmp_path / "ledger.jsonl"
        _one_call(path, 1, 0.5)
        report = build_report(*JAN, [path, str(tmp_path / "*.jsonl")])
        assert (report.calls, report.cost_usd) == (1, 0.5)

    def test_glob_over_rotations_leaves_rollups_out(self, tmp_path: Path) -> None:
        """A glob like `x.jsonl*` after a first report reads the ledger, not its rollup file:
        the same totals, and no damaged line."""
        path = tmp_path / "x.jsonl"
        _one_call(path, 1, 0.5)
        first = build_report(*JAN, [path])
        assert (tmp_path / "x.jsonl.rollup.json").exists()
        report = build_report(*JAN, [str(tmp_path / "x.jsonl*")])
        assert_same(comparable(report), comparable(first))


class TestRotations:
    def test_base_path_brings_its_rotations(self, rotated: Path) -> None:
        """The base path alone reads .2.gz, .1 and dated siblings, oldest first, not others."""
        report = build_report(*JAN, [rotated])
        assert [Path(s).name for s in report.sources] == [
            "x.jsonl.2.gz",
            "x.jsonl.1",
            "x.jsonl-20260103",
            "x.jsonl",
        ]
        assert _costs_by_day(report) == {
            "2026-01-01": 1.0,
            "2026-01-02": 2.0,
            "2026-01-03": 4.0,
            "2026-01-04": 8.0,
        }
        assert (report.skipped_corrupt, report.skipped_partial) == (0, 0)

    def test_rotations_give_the_same_report_twice(self, rotated: Path) -> None:
        """A second report over rotated files (now with rollups) equals the first."""
        first = build_report(*JAN, [rotated])
        second = build_report(*JAN, [rotated])
        assert_same(comparable(second), comparable(first))
        assert second.from_rollups == 3  # .1, the dated one and the base; never the .gz

    def test_truncated_gz_keeps_the_rest(self, rotated: Path) -> None:
        """A cut-short .gz (still compressing, or damaged) counts as partial; the rest is read."""
        archive = rotated.with_name("x.jsonl.2.gz")
        archive.write_bytes(archive.read_bytes()[:-12])
        report = build_report(*JAN, [rotated])
        assert report.skipped_partial == 1
        assert report.cost_usd == 2.0 + 4.0 + 8.0

    def test_gz_with_a_corrupt_deflate_stream_keeps_the_rest(self, rotated: Path) -> None:
        """A .gz whose compressed data is corrupt (zlib's "invalid block type") counts as
        damaged instead of failing the report; the other files are read."""
        archive = rotated.with_name("x.jsonl.2.gz")
        corrupt_member = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x07" + b"\x00" * 64
        archive.write_bytes(archive.read_bytes() + corrupt_member)
        report = build_report(*JAN, [rotated])
        assert report.skipped_partial == 1
        assert report.cost_usd >= 2.0 + 4.0 + 8.0

    def test_not_a_gzip_at_all(self, rotated: Path) -> None:
        """A .gz that is not gzip data counts as damaged; the rest is read."""
        rotated.with_name("x.jsonl.2.gz").write_bytes(b"plain text, not gzip\n")
        report = build_report(*JAN, [rotated])
        assert report.skipped_partial == 1
        assert report.cost_usd == 2.0 + 4.0 + 8.0
