"""The report's arithmetic against totals computed by hand from a small ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from nexus_llm.finops.report import Report, build_report
from nexus_llm.observe.audit import AuditLog
from tests.finops.finops_support import CALLS, FIRST, LAST, TOTAL_COST, row, write_calls


@pytest.fixture
def report(tmp_path: Path) -> Report:
    path = tmp_path / "ledger.jsonl"
    write_calls(path, CALLS)
    return build_report(FIRST, LAST, [path], use_rollups=False)


class TestTotals:
    def test_cost_calls_and_tokens(self, report: Report) -> None:
        """Totals add every call in the range and none outside it."""
        assert report.cost_usd == TOTAL_COST
        assert report.calls == 9
        assert report.paid_calls == 7  # all but the two dedupe hits
        assert report.input_tokens == 100 + 1000 + 400 + 2000 + 300 + 200 + 500
        assert report.output_tokens == 50 + 200 + 100 + 400 + 60 + 100 + 125
        assert report.cached_tokens == 110
        assert report.reasoning_tokens == 50

    def test_dedupe_savings(self, report: Report) -> None:
        """Dedupe hits count as calls of $0 and their saved cost is summed apart."""
        assert report.dedupe_hits == 2
        assert report.dedupe_saved_usd == 0.25 + 4.0

    def test_estimated_share(self, report: Report) -> None:
        """The estimated share is the cost of paid approx calls over the total cost."""
        assert report.approx_calls == 2  # the approx dedupe hit is not a paid estimate
        assert report.approx_cost_usd == 0.5 + 0.75
        assert report.approx_share == pytest.approx(1.25 / 9.0)

    def test_unpriced_count(self, report: Report) -> None:
        """A call whose model had no price is counted as unpriced."""
        assert report.unpriced_calls == 1

    def test_nothing_skipped(self, report: Report) -> None:
        """A clean ledger reports no damaged lines."""
        assert (report.skipped_corrupt, report.skipped_partial) == (0, 0)


class TestBreakdowns:
    def test_by_team(self, report: Report) -> None:
        """Rows by team: calls, cost and tokens, the biggest spender first."""
        assert [row(x) for x in report.breakdowns["team"]] == [
            ("ops", 5, 5.75, 2900, 635),
            ("search", 4, 3.25, 1600, 400),
        ]

    def test_by_project(self, report: Report) -> None:
        """Rows by project."""
        assert [row(x) for x in report.breakdowns["project"]] == [
            ("web", 5, 6.75, 3500, 760),
            ("finops", 4, 2.25, 1000, 275),
        ]

    def test_by_purpose(self, report: Report) -> None:
        """Rows by purpose."""
        assert [row(x) for x in report.breakdowns["purpose"]] == [
            ("ops", 5, 6.5, 2800, 675),
            ("support", 4, 2.5, 1700, 360),
        ]

    def test_by_provider(self, report: Report) -> None:
        """Rows by provider."""
        assert [row(x) for x in report.breakdowns["provider"]] == [
            ("openai", 5, 7.5, 3800, 785),
            ("gemini", 4, 1.5, 700, 250),
        ]

    def test_by_model(self, report: Report) -> None:
        """Rows by model, the unpriced model last at $0."""
        assert [row(x) for x in report.breakdowns["model"]] == [
            ("gpt-4o", 4, 7.5, 3500, 725),
            ("gemini-2.5-flash", 4, 1.5, 700, 250),
            ("gpt-5-new", 1, 0.0, 300, 60),
        ]

    @pytest.mark.parametrize("dim", ["team", "project", "purpose", "provider", "model"])
    def test_shares_are_of_the_total(self, report: Report, dim: str) -> None:
        """Every row's share is its cost over the total, and a breakdown's rows add up to it."""
        lines = report.breakdowns[dim]
        for line in lines:
            assert line.share == pytest.approx(line.cost_usd / TOTAL_COST)
        assert sum(x.cost_usd for x in lines) == TOTAL_COST
        assert sum(x.calls for x in lines) == report.calls

    def test_top_spenders(self, report: Report) -> None:
        """Team/project pairs ranked by cost."""
        assert [row(x) for x in report.top_spenders] == [
            ("ops / web", 2, 4.0, 2300, 460),
            ("search / web", 3, 2.75, 1200, 300),
            ("ops / finops", 3, 1.75, 600, 175),
            ("search / finops", 1, 0.5, 400, 100),
        ]
        assert report.top_spenders[0].share == pytest.approx(4.0 / 9.0)

    def test_price_versions_count_paid_calls_only(self, report: Report) -> None:
        """Each price-table version carries its paid calls and cost; dedupe hits are left out."""
        assert [row(x) for x in report.price_versions] == [
            ("2026-02", 4, 6.25, 3000, 685),
            ("2026-01", 3, 2.75, 1500, 350),
        ]


class TestDailySeries:
    def test_every_day_of_the_range_quiet_ones_included(self, report: Report) -> None:
        """The series has one row per day from --from to --to, zeros on quiet days."""
        assert [row(x) for x in report.daily] == [
            ("2026-01-01", 3, 2.25, 1100, 250),
            ("2026-01-02", 3, 4.5, 2700, 560),
            ("2026-01-03", 0, 0.0, 0, 0),
            ("2026-01-04", 3, 2.25, 700, 225),
            ("2026-01-05", 0, 0.0, 0, 0),
        ]
        assert [x.share for x in report.daily] == pytest.approx([0.25, 0.5, 0.0, 0.25, 0.0])

    def test_a_range_inside_the_data(self, tmp_path: Path) -> None:
        """A narrower range keeps only its days: here 2026-01-02 alone."""
        path = tmp_path / "ledger.jsonl"
        write_calls(path, CALLS)
        day = date(2026, 1, 2)
        report = build_report(day, day, [path], use_rollups=False)
        assert (report.calls, report.cost_usd, report.unpriced_calls) == (3, 4.5, 1)
        assert [row(x) for x in report.price_versions] == [
            ("2026-02", 2, 4.0, 2300, 460),
            ("2026-01", 1, 0.5, 400, 100),
        ]


class TestAuditErrors:
    def test_errors_and_429s_in_the_range(self, tmp_path: Path) -> None:
        """llm_error events in the range are counted by type, and 429s apart."""
        ledger = tmp_path / "ledger.jsonl"
        write_calls(ledger, CALLS)
        audit_path = tmp_path / "audit.jsonl"
        moments = iter(
            datetime(2026, 1, d, h, tzinfo=UTC)
            for d, h in [(1, 0), (2, 5), (5, 23), (4, 1), (6, 0)]
        )
        audit = AuditLog(audit_path, env="test", clock=lambda: next(moments))
        audit.emit("llm_error", error_type="rate_limited", status=429, provider="gemini")
        audit.emit("llm_error", error_type="rate_limited", status=429, provider="gemini")
        audit.emit("llm_error", error_type="server_error", status=503, provider="openai")
        audit.emit("llm_success", provider="gemini")
        audit.emit("llm_error", error_type="server_error", status=500)  # 2026-01-06: outside
        report = build_report(FIRST, LAST, [ledger], [audit_path], use_rollups=False)
        assert report.audit_sources == [str(audit_path)]
        assert report.errors == {"rate_limited": 2, "server_error": 1}
        assert report.rate_limited == 2
