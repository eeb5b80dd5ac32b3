"""The seed's checklist (v6.10) as data: one row per item, with its stage and its OK/NG words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    row: str
    stage: str  # smoke | ops | day1
    title: str
    command: str
    ok_when: str
    ng_hint: str


STAGE_TITLES: Final = {
    "smoke": "A. 30-minute smoke (minimum pass)",
    "ops": "B. 2-hour rehearsal (operations pass)",
    "day1": "C. 1-day rehearsal (release pass)",
}

CHECKLIST: Final[tuple[ChecklistItem, ...]] = (
    ChecklistItem(
        "1",
        "smoke",
        "Basic call + log / ledger creation",
        'python tools/rehearsal_harness.py smoke --prompt "hello" --purpose ops',
        "audit log has >= 1 llm_success; ledger has >= 1 line with actual_cost_usd > 0 or "
        "approx_tokens=true",
        "log files not created, or the call raised: check LLM_AUDIT_LOG_PATH / "
        "LLM_COST_LEDGER_PATH, the provider key, base URL and model",
    ),
    ChecklistItem(
        "2",
        "smoke",
        "Report generation",
        "python tools/rehearsal_harness.py report --from 2026-01-01 --to 2026-01-31 "
        "--out logs/finops_rehearsal.md",
        "the out file is created and shows the total cost",
        "no out file, or a parse failure: check the ledger path and its lines",
    ),
    ChecklistItem(
        "3",
        "smoke",
        "Alert wiring (dry run → real send)",
        "python tools/rehearsal_harness.py anomaly --dry-run",
        "dry run exits 0; with a lowered threshold one cost-spike alert arrives",
        "webhook error (401/404) or timeout: check SLACK_WEBHOOK_URL / TEAMS_WEBHOOK_URL",
    ),
    ChecklistItem(
        "4",
        "ops",
        "Dedupe effect",
        'python tools/rehearsal_harness.py dedupe --prompt "same prompt" --n 5 --purpose ops',
        "llm_dedupe_hit lines / the dedupe metric increases",
        "every call reaches the provider and cost accumulates: check the dedupe TTL / key / "
        "purpose / tags",
    ),
    ChecklistItem(
        "5",
        "ops",
        "Tagging (team / project) separation",
        'python tools/rehearsal_harness.py tagging --prompt "tag test" --team ops '
        "--project finops --purpose ops",
        "the ledger records team / project and the cost metric's labels are separate",
        "only the defaults appear for team / project: check the env vars / context propagation",
    ),
    ChecklistItem(
        "6",
        "ops",
        "Load (low intensity)",
        'python tools/rehearsal_load_test.py --prompt "ping" --n 50 --concurrency 5 '
        "--purpose ops --team ops --project rehearsal",
        "p95 does not blow up (relative to the environment); fail rate zero to a few",
        "fail rate rises (429 / timeout): check backoff / cooldown",
    ),
    ChecklistItem(
        "7",
        "day1",
        "Cron scheduler",
        "anomaly watch */5 * * * *; monthly report 0 9 1 * *",
        "no missed alerts / reports",
        "missed runs: check log / path / permission problems",
    ),
    ChecklistItem(
        "8",
        "day1",
        "Fault → recovery round trip",
        "deliberate fault (bad key / network blocked) → breaker / alert → recovery",
        "cause identified and actionable within 5 minutes; no excess alerts",
        "duplicate-alert bomb, or the breaker stays open after recovery",
    ),
    ChecklistItem(
        "autoscore",
        "day1",
        "Automatic scoring (v6.11)",
        'python tools/rehearsal_autoscore.py --topology "single+redis" --providers '
        '"gemini-first (openai/anthropic/glm optional)"',
        "llm_success, ledger records, llm_dedupe_hit and tagging found in the last 2-4 hours "
        "of logs",
        "a signal missing from the recent logs: run checks 1, 4 and 5 first",
    ),
)

ROWS: Final = {item.row: item for item in CHECKLIST}
