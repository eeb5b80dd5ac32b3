"""Check 7 on `local`: the real scheduled jobs, run at every tick of a simulated span.

A local rehearsal has no day of cron history to read, and cannot wait a day. So it plays one:
each tick of the seed's schedule in the span (the anomaly watch every 5 minutes, the monthly
report at 09:00 on the 1st) runs the real job — a real anomaly run on the environment's files,
store and webhooks; a real report written into the log directory — through the same `run_job`
cron uses, with the clock set to the tick. Then the real checker compares the expected ticks
with the `job_run` events, exactly as `nexus cron check` does on a real deployment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from nexus_llm.alert.watch import AnomalyWatch
from nexus_llm.config import Settings
from nexus_llm.finops.report import build_report, render_markdown
from nexus_llm.observe.audit import AuditLog
from nexus_llm.schedule.check import expected_ticks
from nexus_llm.schedule.crontab import render_crontab
from nexus_llm.schedule.jobs import JOBS, MONTHLY_REPORT, previous_month
from nexus_llm.schedule.runs import run_job

from .cron import run_cron_check
from .result import CheckResult


def rehearsal_span(now: datetime, tz: tzinfo) -> tuple[datetime, timedelta]:
    """Two hours that hold both schedules: 08:00-10:00 local on the 1st of this month."""
    local = now.astimezone(tz)
    end = local.replace(day=1, hour=10, minute=0, second=0, microsecond=0)
    return end, timedelta(hours=2)


def rehearse_schedule(
    settings: Settings, *, end: datetime, span: timedelta, tz: tzinfo
) -> CheckResult:
    """Run every job at each of its ticks in (end - span, end], then check the record."""
    audit = AuditLog(settings.audit_log_path, env=settings.env)
    log_dir = settings.audit_log_path.parent.absolute()  # cron wants absolute paths
    # A fresh local environment has no ledger until its first call; start it empty, as that
    # call would, so the monthly report job reports $0.00 instead of "no ledger found".
    settings.cost_ledger_path.parent.mkdir(parents=True, exist_ok=True)
    settings.cost_ledger_path.touch(exist_ok=True)
    ticks = sorted(
        (tick, name)
        for name, job in JOBS.items()
        for tick in expected_ticks(job.schedule, end - span, end, tz)
    )
    for tick, name in ticks:
        started = tick + timedelta(seconds=2)  # cron starts a job a moment after its tick
        if name == MONTHLY_REPORT.name:
            action = _monthly_report(settings, started, log_dir)
        else:
            action = _anomaly_watch(settings, started)
        run_job(name, action, audit=audit, clock=_fixed(started))
    result = run_cron_check(settings.audit_log_path, since=span, now=end, tz=tz)
    crontab = render_crontab(
        nexus=Path(sys.executable).with_name("nexus"),
        workdir=log_dir,
        env_file=None,
        log_dir=log_dir,
    )
    entries = [
        _entry(line) for line in crontab.splitlines() if line[:1].isdigit() or line[:1] == "*"
    ]
    expected = {(job.schedule, name) for name, job in JOBS.items()}
    result.add(
        "crontab",
        set(entries) == expected,
        "nexus cron print: " + "; ".join(f"{when} → cron run {job}" for when, job in entries),
    )
    result.measured = (
        f"simulated {span.total_seconds() / 3600:g} h ending {end.isoformat()}: {result.measured}"
    )
    return result


def _fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def _entry(line: str) -> tuple[str, str]:
    """(schedule, job) of one crontab line."""
    fields = line.split()
    job = line.rsplit(" cron run ", 1)[-1].split()[0] if " cron run " in line else "?"
    return " ".join(fields[:5]), job


def _anomaly_watch(settings: Settings, at: datetime) -> Callable[[], int]:
    def action() -> int:
        with AnomalyWatch(settings, clock=lambda: at) as watch:
            result = watch.run()
        return 3 if result.delivery_failed else 0

    return action


def _monthly_report(settings: Settings, at: datetime, log_dir: Path) -> Callable[[], int]:
    def action() -> int:
        first, last = previous_month(at.date())
        report = build_report(first, last, [settings.cost_ledger_path], [settings.audit_log_path])
        out = log_dir / f"finops_{first:%Y-%m}.md"
        out.write_text(render_markdown(report, None), "utf-8")
        return 0

    return action
