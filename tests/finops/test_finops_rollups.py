"""Rollups beside the ledger: a report from them equals one from scratch, to the cent, in every
breakdown — after appends, rotations, truncations and damage."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from benchmarks.make_ledger import write as make_ledger
from nexus_llm.finops import rollup
from nexus_llm.finops.cube import Folder
from nexus_llm.finops.report import build_report
from tests.finops.finops_support import assert_same, comparable, rollup_offset, same_both_ways

START = datetime(2026, 1, 1, tzinfo=UTC)
RANGE = (date(2026, 1, 1), date(2026, 1, 10))
OTHER_RANGE = (date(2026, 1, 4), date(2026, 1, 6))
CORRUPT_LINE = b'{"ts":"2026-01-02T00:00:00.000Z","broken\n'


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """5,000 lines over 10 days, in the exact shape `CostLedger` writes."""
    path = tmp_path / "ledger.jsonl"
    make_ledger(str(path), lines=5_000, days=10, start=START, seed=1)
    return path


def _append(path: Path, lines: int, first: int, seed: int) -> int:
    """Append `lines` more lines (and one corrupt line); returns how many bytes were added."""
    before = path.stat().st_size
    make_ledger(str(path), lines=lines, days=10, start=START, seed=seed, first=first)
    with path.open("ab") as out:
        out.write(CORRUPT_LINE)
    return path.stat().st_size - before


def _rollup_file(path: Path) -> Path:
    return path.with_name(path.name + rollup.ROLLUP_SUFFIX)


class TestEqualToScratch:
    def test_first_read_then_from_the_rollup(self, ledger: Path) -> None:
        """The first report writes the rollup; the next is read from it; both equal scratch."""
        first = same_both_ways(*RANGE, [ledger])
        assert first.from_rollups == 0
        assert rollup_offset(ledger) == ledger.stat().st_size
        second = same_both_ways(*RANGE, [ledger])
        assert second.from_rollups == 1
        assert_same(comparable(second), comparable(first))
        assert first.calls == 5_000

    def test_appends_below_and_above_the_checkpoint(self, ledger: Path) -> None:
        """After 1,000 new lines (no checkpoint), then >= 4 MiB (checkpoint), then 1,000 more,
        the report from the rollup still equals the one from scratch."""
        same_both_ways(*RANGE, [ledger])
        checkpoint = rollup_offset(ledger)

        assert _append(ledger, 1_000, first=5_000, seed=2) < 4 << 20
        report = same_both_ways(*RANGE, [ledger])
        assert report.from_rollups == 1
        assert rollup_offset(ledger) == checkpoint  # too little new to rewrite the rollup
        assert (report.calls, report.skipped_corrupt) == (6_000, 1)

        assert _append(ledger, 12_000, first=6_000, seed=3) >= 4 << 20
        report = same_both_ways(*RANGE, [ledger])
        assert rollup_offset(ledger) == ledger.stat().st_size  # checkpointed
        assert (report.calls, report.skipped_corrupt) == (18_000, 2)

        _append(ledger, 1_000, first=18_000, seed=4)
        report = same_both_ways(*RANGE, [ledger])
        assert (report.calls, report.skipped_corrupt) == (19_000, 3)

    def test_another_range_from_the_same_rollup(self, ledger: Path) -> None:
        """A different range, answered from the rollup after an append, equals scratch."""
        same_both_ways(*RANGE, [ledger])
        _append(ledger, 1_000, first=5_000, seed=2)
        report = same_both_ways(*OTHER_RANGE, [ledger])
        assert report.from_rollups == 1
        assert [d.name for d in report.daily] == ["2026-01-04", "2026-01-05", "2026-01-06"]
        assert 0 < report.calls < 6_000


class TestRebuilt:
    def test_replaced_file_with_the_same_first_line(self, ledger: Path) -> None:
        """A file replaced by another (new inode), even one starting with the same line and
        longer, is read from scratch."""
        same_both_ways(*RANGE, [ledger])
        first_line = ledger.read_bytes().split(b"\n", 1)[0] + b"\n"
        other = ledger.with_name("other.jsonl")
        make_ledger(str(other), lines=8_000, days=10, start=START, seed=9, first=1)
        other.write_bytes(first_line + other.read_bytes())
        old_inode = ledger.stat().st_ino
        os.replace(other, ledger)
        assert ledger.stat().st_ino != old_inode
        assert ledger.stat().st_size > rollup_offset(ledger)
        report = same_both_ways(*RANGE, [ledger])
        assert report.from_rollups == 0
        assert report.calls == 8_001

    def test_truncated_and_rewritten_shorter(self, ledger: Path) -> None:
        """A file rewritten shorter in place (same inode, same first line) is read from scratch."""
        same_both_ways(*RANGE, [ledger])
        lines = ledger.read_bytes().splitlines(keepends=True)
        inode = ledger.stat().st_ino
        with ledger.open("r+b") as out:
            out.truncate(0)
            out.write(b"".join(lines[:1_500]))
        assert ledger.stat().st_ino == inode
        report = same_both_ways(*RANGE, [ledger])
        assert report.from_rollups == 0
        assert report.calls == 1_500
        assert rollup_offset(ledger) == ledger.stat().st_size  # the rollup was rebuilt

    def test_rotated_away_and_started_again(self, ledger: Path) -> None:
        """After a rotation (rename to .1, a new base file) the pair reports as from scratch."""
        same_both_ways(*RANGE, [ledger])
        ledger.rename(ledger.with_name("ledger.jsonl.1"))
        make_ledger(str(ledger), lines=500, days=10, start=START, seed=5, first=5_000)
        report = same_both_ways(*RANGE, [ledger])
        assert report.calls == 5_500
        again = same_both_ways(*RANGE, [ledger])
        assert again.from_rollups == 2


class TestDamagedOrUnwritable:
    @pytest.mark.parametrize(
        "damage",
        ["empty", "garbage", "cut-short", "null", "list", "old-format", "short-totals"],
    )
    def test_damaged_rollup_is_ignored(self, ledger: Path, damage: str) -> None:
        """A damaged rollup file is ignored: the report is read from scratch, and equal."""
        same_both_ways(*RANGE, [ledger])
        target = _rollup_file(ledger)
        real = target.read_bytes()
        data = json.loads(real)
        if damage == "old-format":
            data["format"] = 1
        if damage == "short-totals":
            day = next(iter(data["ledger"]["days"].values()))
            day["totals"] = day["totals"][:3]
        content = {
            "empty": b"",
            "garbage": b"\x00garbage{",
            "cut-short": real[: len(real) // 2],
            "null": b"null",
            "list": b"[]",
        }.get(damage, json.dumps(data).encode())
        target.write_bytes(content)
        report = same_both_ways(*RANGE, [ledger])
        assert report.from_rollups == 0
        assert report.calls == 5_000

    @pytest.mark.skipif(
        os.geteuid() == 0, reason="root ignores directory permissions (CI runs tests as root)"
    )
    def test_read_only_directory_still_reports(self, ledger: Path) -> None:
        """Where the rollup cannot be written the report still works, and equals scratch."""
        directory = ledger.parent
        directory.chmod(0o555)
        try:
            report = same_both_ways(*RANGE, [ledger])
            assert not _rollup_file(ledger).exists()
            assert report.calls == 5_000
        finally:
            directory.chmod(0o755)

    def test_rollup_path_taken_by_a_directory(self, ledger: Path) -> None:
        """A directory where the rollup would go can be neither read nor replaced: the report
        still works, every time, and equals scratch."""
        _rollup_file(ledger).mkdir()
        for _ in range(2):
            report = same_both_ways(*RANGE, [ledger])
            assert (report.from_rollups, report.calls) == (0, 5_000)
        assert _rollup_file(ledger).is_dir()
        assert not list(ledger.parent.glob("*.tmp"))  # no temp file left behind

    def test_no_rollups_leaves_no_file(self, ledger: Path) -> None:
        """use_rollups=False neither reads nor writes a rollup."""
        build_report(*RANGE, [ledger], use_rollups=False)
        assert sorted(p.name for p in ledger.parent.iterdir()) == ["ledger.jsonl"]


class TestParallelFirstRead:
    def test_large_file_split_across_workers_equals_one_pass(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A first read of a >= 32 MiB ledger, split across 4 forked workers, gives the same
        per-day statistics as one Folder over the whole file, and its rollup the same report."""
        path = tmp_path / "big.jsonl"
        make_ledger(str(path), lines=85_000, days=30, start=START, seed=11)
        with path.open("ab") as out:
            out.write(CORRUPT_LINE + b'{"partial":')  # damage, and a write in progress
        assert path.stat().st_size >= 32 << 20
        monkeypatch.setattr(os, "cpu_count", lambda: 4)
        splits: list[list[int]] = []
        real_split = rollup._split

        def spy(*args: object, **kwargs: object) -> list[int]:
            bounds = real_split(*args, **kwargs)  # type: ignore[arg-type]
            splits.append(bounds)
            return bounds

        monkeypatch.setattr(rollup, "_split", spy)
        read = rollup.read_ledger_file(path)
        assert len(splits) == 1
        assert len(splits[0]) == 5  # four parts

        whole = path.read_bytes()
        folder = Folder()
        folder.fold(whole[: whole.rfind(b"\n") + 1])
        expected = folder.finish()
        assert read.ledger.corrupt == expected.corrupt == 1
        assert read.ledger.partial == 1
        assert sorted(read.ledger.days) == sorted(expected.days)
        for day, stats in expected.days.items():
            assert_same(read.ledger.days[day].to_json(), stats.to_json(), day)

        warm = build_report(date(2026, 1, 1), date(2026, 1, 30), [path])
        assert warm.from_rollups == 1
        assert warm.calls == sum(s.calls for s in expected.days.values())
        assert warm.cost_usd == pytest.approx(sum(s.cost for s in expected.days.values()))
