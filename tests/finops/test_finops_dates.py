"""Date ranges: both ends included, UTC calendar days, bad ranges refused."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from nexus_llm.finops.report import ReportInputError, build_report, parse_day
from tests.finops.finops_support import Call, write_calls

EDGES = [
    Call("2026-01-09T23:59:59.999Z", cost=1.0),
    Call("2026-01-10T00:00:00.000Z", cost=2.0),
    Call("2026-01-10T23:59:59.999Z", cost=4.0),
    Call("2026-01-11T00:00:00.000Z", cost=8.0),
]


@pytest.fixture
def edges(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.jsonl"
    write_calls(path, EDGES)
    return path


class TestInclusiveEnds:
    def test_single_day_takes_its_first_and_last_millisecond(self, edges: Path) -> None:
        """--from D --to D counts 00:00:00.000Z and 23:59:59.999Z of D and nothing of D±1."""
        day = date(2026, 1, 10)
        report = build_report(day, day, [edges], use_rollups=False)
        assert (report.calls, report.cost_usd) == (2, 6.0)

    def test_to_is_inclusive(self, edges: Path) -> None:
        """A line at 23:59:59.999Z on the --to day counts; one at 00:00:00.000Z after does not."""
        report = build_report(date(2026, 1, 1), date(2026, 1, 9), [edges], use_rollups=False)
        assert (report.calls, report.cost_usd) == (1, 1.0)

    def test_from_is_inclusive(self, edges: Path) -> None:
        """A line at 00:00:00.000Z on the --from day counts; one a millisecond before does not."""
        report = build_report(date(2026, 1, 11), date(2026, 1, 31), [edges], use_rollups=False)
        assert (report.calls, report.cost_usd) == (1, 8.0)
        assert len(report.daily) == 21

    def test_range_spanning_a_year_end(self, tmp_path: Path) -> None:
        """A range across 31 Dec lists every day in order, the new year after the old."""
        path = tmp_path / "ledger.jsonl"
        write_calls(
            path,
            [
                Call("2025-12-31T12:00:00.000Z", cost=1.0),
                Call("2026-01-01T12:00:00.000Z", cost=2.0),
            ],
        )
        report = build_report(date(2025, 12, 30), date(2026, 1, 2), [path], use_rollups=False)
        assert [(d.name, d.cost_usd) for d in report.daily] == [
            ("2025-12-30", 0.0),
            ("2025-12-31", 1.0),
            ("2026-01-01", 2.0),
            ("2026-01-02", 0.0),
        ]


def _foreign(ts: str) -> bytes:
    """A line from another writer: keys in another order, so it takes the json path."""
    record = {
        "priced": True,
        "saved_cost_usd": 0.0,
        "dedupe_hit": False,
        "price_version": "2026-01",
        "approx_tokens": False,
        "actual_cost_usd": 3.0,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
        "output_tokens": 5,
        "input_tokens": 10,
        "purpose": "ops",
        "project": "finops",
        "team": "ops",
        "model": "m",
        "provider": "gemini",
        "request_id": "foreign-1",
        "env": "prod",
        "ts": ts,
    }
    return json.dumps(record).encode() + b"\n"


def _ledger_shape(tmp_path: Path, ts: str) -> bytes:
    """A line in the exact shape `CostLedger` writes, with `ts` replaced."""
    written = write_calls(tmp_path / "shape.jsonl", [Call("2026-01-01T00:00:00.000Z", cost=3.0)])
    line = (tmp_path / "shape.jsonl").read_bytes()
    return line.replace(str(written[0]["ts"]).encode(), ts.encode())


class TestUtcDays:
    @pytest.mark.parametrize(
        ("ts", "utc_day"),
        [
            ("2026-01-02T01:00:00+09:00", date(2026, 1, 1)),
            ("2026-01-01T20:00:00-05:00", date(2026, 1, 2)),
            ("2026-01-01T23:30:00.000+00:00", date(2026, 1, 1)),
        ],
        ids=["plus-09", "minus-05", "plus-00"],
    )
    @pytest.mark.parametrize("shape", ["foreign-writer", "ledger-shape"])
    def test_offset_timestamps_land_on_their_utc_day(
        self, tmp_path: Path, ts: str, utc_day: date, shape: str
    ) -> None:
        """A ts with a UTC offset counts on its UTC calendar day, not its local one."""
        line = _foreign(ts) if shape == "foreign-writer" else _ledger_shape(tmp_path, ts)
        path = tmp_path / "ledger.jsonl"
        path.write_bytes(line)
        report = build_report(date(2026, 1, 1), date(2026, 1, 2), [path], use_rollups=False)
        assert report.skipped_corrupt == 0
        assert [d.name for d in report.daily if d.calls] == [utc_day.isoformat()]
        assert report.cost_usd == 3.0


class TestBadRanges:
    @pytest.mark.parametrize("text", ["2026-13-01", "yesterday", "2026-02-30", ""])
    def test_bad_dates_are_refused_naming_the_flag(self, text: str) -> None:
        """parse_day refuses what is not a calendar date, naming the flag and the form."""
        with pytest.raises(ReportInputError, match=r"^--from .*expected YYYY-MM-DD$"):
            parse_day(text, "--from")

    def test_to_before_from_is_refused(self, edges: Path) -> None:
        """A range that ends before it starts is an input error naming both flags."""
        with pytest.raises(ReportInputError, match=r"--to 2026-01-09 is before --from 2026-01-10"):
            build_report(date(2026, 1, 10), date(2026, 1, 9), [edges])

    def test_missing_ledger_is_refused(self, tmp_path: Path) -> None:
        """A ledger path that matches no file is an input error naming --ledger."""
        with pytest.raises(ReportInputError, match="--ledger"):
            build_report(date(2026, 1, 1), date(2026, 1, 2), [tmp_path / "missing.jsonl"])
