"""Check 2 — the FinOps report is written and shows the total cost (seed §A.2).

One tagged call makes sure the range has a record of this run; the report for today (UTC) is
then built from the ledger, written beside it, and read back: OK when the file exists, shows a
total, and that total equals the sum of the ledger lines of the range to the cent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nexus_llm import Client, NexusError
from nexus_llm.finops.report import build_report, format_usd, render_markdown
from nexus_llm.observe.jsonl import read_records

from .result import CheckResult

SEED_NG_HINT = "no out file, or a parse failure: check the ledger path and its lines"
THRESHOLD = "the report file exists and its total equals the ledger's, to the cent"


def run_report_check(client: Client) -> CheckResult:
    settings = client.settings
    result = CheckResult("report", threshold=THRESHOLD, hint=SEED_NG_HINT)
    try:
        client.generate("report check", purpose="ops", team="finops", dedupe=False)
    except NexusError as error:
        result.add("call", False, " ".join(f"the seeding call failed: {error}".split()))
        return result
    today = datetime.now(UTC).date()
    out = settings.cost_ledger_path.parent / "finops_rehearsal.md"
    report = build_report(today, today, [settings.cost_ledger_path], [settings.audit_log_path])
    out.write_text(render_markdown(report), "utf-8")
    text = out.read_text("utf-8") if out.is_file() else ""
    shown = format_usd(report.cost_usd)
    result.add("report file", bool(text), f"{out} ({len(text):,} bytes)")
    result.add(
        "total shown", f"**{shown}**" in text, f"total cost {shown} over {report.calls} calls"
    )
    records, _stats = read_records([settings.cost_ledger_path])
    day = today.isoformat()
    ledger_total = sum(
        cost
        for r in records
        if str(r.get("ts", "")).startswith(day)
        and isinstance(cost := r.get("actual_cost_usd"), int | float)
    )
    result.add(
        "matches the ledger",
        round(ledger_total, 2) == round(report.cost_usd, 2)
        and abs(ledger_total - report.cost_usd) < 1e-9,
        f"ledger lines of {day} sum to {format_usd(ledger_total)}",
    )
    result.measured = f"{shown} over {report.calls} call(s) on {day}"
    return result
