"""The report rendered: markdown from the shipped or a user's template, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from nexus_llm.finops.report import (
    Report,
    build_report,
    format_usd,
    render_csv,
    render_json,
    render_markdown,
)
from tests.finops.finops_support import CALLS, FIRST, LAST, TOTAL_COST, Call, write_calls

NOW = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
SECTIONS = [
    "## Totals",
    "## Daily cost",
    "## Top spenders (team / project)",
    "## By team",
    "## By project",
    "## By purpose",
    "## By provider",
    "## By model",
    "## Errors in the range (audit log)",
    "## Data quality",
]


@pytest.fixture
def report(tmp_path: Path) -> Report:
    path = tmp_path / "ledger.jsonl"
    write_calls(path, CALLS)
    return build_report(FIRST, LAST, [path], use_rollups=False, now=NOW)


def _mermaid(text: str) -> str:
    found = re.search(r"```mermaid\n(.*?)\n```", text, re.DOTALL)
    assert found is not None, text
    return found.group(1)


class TestMarkdown:
    def test_total_in_bold_and_every_section(self, report: Report) -> None:
        """The total cost is in bold and every section of the report is present."""
        text = render_markdown(report)
        assert "| **$9.00** | 9 | 7 | 4,500 | 1,035 | 110 | 50 |" in text
        for section in SECTIONS:
            assert section in text
        assert "Days are UTC calendar days, both ends included." in text
        assert "Generated 2026-02-01 09:30 UTC" in text

    def test_mermaid_chart_has_one_bar_per_day(self, report: Report) -> None:
        """The xychart-beta block has one label and one bar per day, quiet days at zero."""
        chart = _mermaid(render_markdown(report))
        assert chart.startswith("xychart-beta")
        labels = re.search(r"x-axis \[(.*)\]", chart)
        bars = re.search(r"bar \[(.*)\]", chart)
        assert labels is not None
        assert bars is not None
        assert labels.group(1).split(", ") == [
            '"01-01"',
            '"01-02"',
            '"01-03"',
            '"01-04"',
            '"01-05"',
        ]
        assert [float(b) for b in bars.group(1).split(", ")] == [2.25, 4.5, 0.0, 2.25, 0.0]

    def test_dedupe_estimate_unpriced_and_price_versions(self, report: Report) -> None:
        """Savings, the estimated share, unpriced calls and price versions are stated."""
        text = render_markdown(report)
        assert "- Dedupe: 2 calls answered from the cache, **$4.25 saved**." in text
        assert "- Estimated: $1.25 (13.9% of the cost, 2 calls)" in text
        assert "- Unpriced: 1 calls used a model missing from the price table" in text
        assert "`2026-02` (4 calls, $6.25), `2026-01` (3 calls, $2.75)." in text

    def test_tables_rows(self, report: Report) -> None:
        """Daily, top-spender and breakdown tables carry the hand-computed rows."""
        text = render_markdown(report)
        assert "| 2026-01-02 | $4.50 | 3 | 50.0% |" in text
        assert "| 2026-01-03 | $0.00 | 0 | 0.0% |" in text
        assert "| ops / web | $4.00 | 2 | 44.4% |" in text
        assert "| gpt-5-new | $0.00 | 1 | 300 | 60 | 0.0% |" in text
        assert "| openai | $7.50 | 5 | 3,800 | 785 | 83.3% |" in text

    def test_pipe_in_a_name_does_not_break_a_table(self, tmp_path: Path) -> None:
        """A model name with `|` (possible from another writer) is escaped in its table cell."""
        path = tmp_path / "ledger.jsonl"
        write_calls(path, [Call("2026-01-01T10:00:00.000Z", model="a|b", cost=1.0)])
        text = render_markdown(build_report(FIRST, LAST, [path], use_rollups=False))
        assert "| a\\|b | $1.00 | 1 | 0 | 0 | 100.0% |" in text

    def test_empty_range_says_no_records_and_zero(self, tmp_path: Path) -> None:
        """A range with no records still renders, saying so, with $0.00 and no chart."""
        path = tmp_path / "ledger.jsonl"
        write_calls(path, CALLS)
        report = build_report(date(2026, 3, 1), date(2026, 3, 31), [path], use_rollups=False)
        assert report.empty
        assert len(report.daily) == 31
        text = render_markdown(report)
        assert "**No records in this range.** Total cost: **$0.00** over 0 calls." in text
        assert "xychart-beta" not in text
        assert "## Data quality" in text

    def test_user_template(self, report: Report, tmp_path: Path) -> None:
        """A template given by path replaces the shipped one, with the same filters."""
        template = tmp_path / "mine.md"
        template.write_text(
            "TOTAL {{ r.cost_usd | usd }} / {{ r.calls | num }} calls / "
            "{{ r.approx_share | pct }} estimated\n",
            "utf-8",
        )
        assert render_markdown(report, template) == "TOTAL $9.00 / 9 calls / 13.9% estimated\n"

    @pytest.mark.parametrize(
        ("value", "shown"),
        [(0.0, "$0.00"), (9.0, "$9.00"), (1234.5, "$1,234.50"), (0.004, "$0.004000")],
    )
    def test_format_usd(self, value: float, shown: str) -> None:
        """Dollars to the cent, thousands separated; sub-cent amounts keep six decimals."""
        assert format_usd(value) == shown


class TestJson:
    def test_totals_breakdowns_and_timezone(self, report: Report) -> None:
        """The JSON carries the totals, every breakdown, the series and timezone "UTC"."""
        data = json.loads(render_json(report))
        assert data["timezone"] == "UTC"
        assert (data["start"], data["end"]) == ("2026-01-01", "2026-01-05")
        assert (data["cost_usd"], data["calls"], data["paid_calls"]) == (TOTAL_COST, 9, 7)
        assert data["dedupe_saved_usd"] == 4.25
        assert data["approx_share"] == pytest.approx(1.25 / 9)
        assert data["unpriced_calls"] == 1
        assert sorted(data["breakdowns"]) == ["model", "project", "provider", "purpose", "team"]
        assert data["breakdowns"]["team"][0] == {
            "name": "ops",
            "calls": 5,
            "cost_usd": 5.75,
            "input_tokens": 2900,
            "output_tokens": 635,
            "share": pytest.approx(5.75 / 9),
        }
        assert [d["cost_usd"] for d in data["daily"]] == [2.25, 4.5, 0.0, 2.25, 0.0]
        assert [v["name"] for v in data["price_versions"]] == ["2026-02", "2026-01"]


class TestCsv:
    def test_header_total_and_sections(self, report: Report) -> None:
        """The CSV has a header, a total row equal to the report's cost, and every section."""
        rows = list(csv.reader(io.StringIO(render_csv(report))))
        assert rows[0] == [
            "section",
            "name",
            "calls",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "share",
        ]
        total = rows[1]
        assert total[:3] == ["total", "2026-01-01..2026-01-05", "9"]
        assert float(total[3]) == report.cost_usd == TOTAL_COST
        counts: dict[str, int] = {}
        for section, *_ in rows[2:]:
            counts[section] = counts.get(section, 0) + 1
        assert counts == {
            "team": 2,
            "project": 2,
            "purpose": 2,
            "provider": 2,
            "model": 3,
            "day": 5,
            "top_spender": 4,
            "price_version": 2,
            "dedupe": 1,
        }
        assert ["dedupe", "saved_usd", "2", "4.250000", "", "", ""] in rows
        assert ["day", "2026-01-03", "0", "0.000000", "0", "0", "0.0000"] in rows
