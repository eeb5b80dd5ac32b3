"""The FinOps report for a date range: totals, breakdowns, a daily series, top spenders,
dedupe savings, the estimated share, price versions, and errors from the audit log.

Days are UTC calendar days; `--to` is included. Pure aggregation over the cube (see cube.py);
rendering to markdown (a jinja2 template users can replace), JSON or CSV lives here too.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ..observe.jsonl import expand_sources
from ..templates_shipped import shipped_template
from .cube import DIMENSIONS, DayStats, Ledger
from .rollup import ROLLUP_SUFFIX, read_ledger_file

TEMPLATE = "FINOPS_REPORT.md"
MAX_RANGE_DAYS = 3660  # ten years of daily rows; also keeps the last day + 1 representable


@dataclass(slots=True)
class Line:
    """One row of a breakdown."""

    name: str
    calls: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    share: float = 0.0  # of the total cost


@dataclass(slots=True)
class Report:
    start: str
    end: str
    generated_at: str
    sources: list[str]
    calls: int = 0
    paid_calls: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    dedupe_hits: int = 0
    dedupe_saved_usd: float = 0.0
    approx_cost_usd: float = 0.0
    approx_calls: int = 0
    unpriced_calls: int = 0
    breakdowns: dict[str, list[Line]] = field(default_factory=dict)
    daily: list[Line] = field(default_factory=list)
    top_spenders: list[Line] = field(default_factory=list)
    price_versions: list[Line] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    skipped_corrupt: int = 0
    skipped_partial: int = 0
    audit_sources: list[str] = field(default_factory=list)
    from_rollups: int = 0

    @property
    def approx_share(self) -> float:
        return self.approx_cost_usd / self.cost_usd if self.cost_usd else 0.0

    @property
    def empty(self) -> bool:
        return self.calls == 0

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["approx_share"] = self.approx_share
        data["timezone"] = "UTC"
        return data


def format_usd(value: float) -> str:
    """Dollars to the cent; sub-cent amounts keep six decimals so they do not read as zero."""
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:,.6f}"


class ReportInputError(ValueError):
    """A bad range or a missing source: one line for the user, exit code 2."""


def parse_day(text: str, flag: str) -> date:
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ReportInputError(f"{flag} {text!r} is not a date: expected YYYY-MM-DD") from None


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def build_report(
    start: date,
    end: date,
    ledgers: Iterable[str | os.PathLike[str]],
    audits: Iterable[str | os.PathLike[str]] = (),
    *,
    use_rollups: bool = True,
    require_audits: bool = False,
    now: datetime | None = None,
) -> Report:
    """The report for UTC days `start`..`end`, both included.

    Raises:
        ReportInputError: `end` before `start`, no ledger at all, a named (non-glob) ledger
            that does not exist, or — with `require_audits` — a named audit log that does not.
    """
    if end < start:
        raise ReportInputError(f"--to {end} is before --from {start}")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ReportInputError(
            f"--from {start} --to {end} spans {(end - start).days + 1} days: "
            f"a report covers at most {MAX_RANGE_DAYS} days"
        )
    ledger_list = [os.fspath(p) for p in ledgers]
    files = _data_files(ledger_list)
    if not files:
        raise ReportInputError(
            f"no ledger found at {', '.join(ledger_list)}: check LLM_COST_LEDGER_PATH or --ledger"
        )
    _require_each(ledger_list, "--ledger")
    if require_audits:
        _require_each([os.fspath(p) for p in audits], "--audit")
    reads = [read_ledger_file(path, use_rollups=use_rollups) for path in files]
    from_rollups = sum(read.from_rollup for read in reads)
    ledger = reads[0].ledger  # not a copy: merging one file into an empty ledger costs ms
    for read in reads[1:]:
        ledger.add(read.ledger)
    report = Report(
        start=start.isoformat(),
        end=end.isoformat(),
        generated_at=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        sources=[str(p) for p in files],
        skipped_corrupt=ledger.corrupt,
        skipped_partial=ledger.partial,
        from_rollups=from_rollups,
    )
    _fill(report, ledger, start, end)
    audit_files = _data_files([os.fspath(p) for p in audits])
    report.audit_sources = [str(p) for p in audit_files]
    report.errors, report.rate_limited = _audit_errors(audit_files, start, end)
    return report


def _fill(report: Report, ledger: Ledger, start: date, end: date) -> None:
    total = DayStats()
    daily: list[Line] = []
    day = start
    while day <= end:  # every day of the range, quiet days included
        stats = ledger.days.get(day.isoformat())
        if stats is not None:
            total.add(stats)
        daily.append(
            Line(
                day.isoformat(),
                stats.calls if stats else 0,
                stats.cost if stats else 0.0,
                stats.input_tokens if stats else 0,
                stats.output_tokens if stats else 0,
            )
        )
        day += timedelta(days=1)
    report.calls, report.paid_calls, report.cost_usd = total.calls, total.paid_calls, total.cost
    report.input_tokens, report.output_tokens = total.input_tokens, total.output_tokens
    report.cached_tokens, report.reasoning_tokens = total.cached_tokens, total.reasoning_tokens
    report.dedupe_hits, report.dedupe_saved_usd = total.dedupe_hits, total.saved
    report.approx_calls, report.approx_cost_usd = total.approx_calls, total.approx_cost
    report.unpriced_calls = total.unpriced_calls
    cost = total.cost
    report.breakdowns = {d: _ranked(total.by.get(d, {}), cost) for d in DIMENSIONS}
    report.top_spenders = _ranked(total.spenders, cost)[:10]
    report.price_versions = _ranked(total.versions, cost)
    for line in daily:
        line.share = line.cost_usd / cost if cost else 0.0
    report.daily = daily


def _ranked(table: dict[str, list[float]], total: float) -> list[Line]:
    lines = [
        Line(name, int(row[0]), row[1], int(row[2]), int(row[3]), row[1] / total if total else 0.0)
        for name, row in table.items()
    ]
    return sorted(lines, key=lambda x: (-x.cost_usd, x.name))


def _data_files(sources: list[str]) -> list[Path]:
    """The files the sources name, without our own state beside them (rollups, temp files)."""
    return [
        p
        for p in expand_sources(sources)
        if not p.name.endswith(ROLLUP_SUFFIX) and ROLLUP_SUFFIX not in p.name
    ]


def _require_each(sources: list[str], flag: str) -> None:
    for source in sources:
        if not glob.has_magic(source) and not Path(source).is_file():
            raise ReportInputError(f"{flag} {source}: no such file")


def _audit_errors(files: list[Path], start: date, end: date) -> tuple[dict[str, int], int]:
    """Errors and 429s in the range. Lines are filtered by their `ts` bytes before parsing."""
    first, last = start.isoformat().encode(), end.isoformat().encode()
    errors: dict[str, int] = {}
    rate_limited = 0
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as handle:
                for raw in handle:
                    day = raw[7:17]  # {"ts":"YYYY-MM-DD… — our audit lines are UTC (`Z`)
                    if not (first <= day <= last) or b'"llm_error"' not in raw:
                        continue
                    try:
                        record = json.loads(raw)
                    except (ValueError, RecursionError):
                        continue
                    if not isinstance(record, dict):
                        continue
                    kind = str(record.get("error_type", "unknown"))
                    errors[kind] = errors.get(kind, 0) + 1
                    rate_limited += record.get("status") == 429
        except (OSError, EOFError, zlib.error):
            continue  # a damaged rotation: the errors it held are lost, the report is not
    return dict(sorted(errors.items(), key=lambda kv: -kv[1])), rate_limited


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["section", "name", "calls", "cost_usd", "input_tokens", "output_tokens", "share"]
    )
    writer.writerow(
        [
            "total",
            f"{report.start}..{report.end}",
            report.calls,
            f"{report.cost_usd:.6f}",
            report.input_tokens,
            report.output_tokens,
            "1",
        ]
    )
    sections = [
        *report.breakdowns.items(),
        ("day", report.daily),
        ("top_spender", report.top_spenders),
        ("price_version", report.price_versions),
    ]
    for section, lines in sections:
        for line in lines:
            writer.writerow(
                [
                    section,
                    line.name,
                    line.calls,
                    f"{line.cost_usd:.6f}",
                    line.input_tokens,
                    line.output_tokens,
                    f"{line.share:.4f}",
                ]
            )
    writer.writerow(
        ["dedupe", "saved_usd", report.dedupe_hits, f"{report.dedupe_saved_usd:.6f}", "", "", ""]
    )
    for kind, count in report.errors.items():
        writer.writerow(["error", kind, count, "", "", "", ""])
    return out.getvalue()


def render_markdown(report: Report, template_path: Path | None = None) -> str:
    import jinja2

    env = jinja2.Environment(
        autoescape=False,  # noqa: S701 - markdown, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["usd"] = format_usd
    env.filters["pct"] = lambda v: f"{v * 100:.1f}%"
    env.filters["num"] = lambda v: f"{v:,}"
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    text = template_path.read_text("utf-8") if template_path else shipped_template(TEMPLATE)
    return env.from_string(text).render(r=report)
