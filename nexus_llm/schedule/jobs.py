"""The seed's scheduled jobs as data, and the `nexus` arguments each one runs.

Keeping the schedules here (not only in a crontab) lets `nexus cron print` write them and
`nexus cron check` expect them from one source, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """One cron job.

    Args:
        name: the job's name in the crontab, the audit log and the `job` metric label.
        schedule: a five-field cron expression, in the machine's local time.
        description: what the job does, for humans.
        match_within: how long after its tick a run still counts for that tick; None means
            until the next tick (a frequent job that starts late is still that tick's run).
    """

    name: str
    schedule: str
    description: str
    match_within: timedelta | None = None


ANOMALY_WATCH: Final = ScheduledJob(
    "anomaly_watch",
    "*/5 * * * *",
    "every 5 minutes: nexus anomaly (evaluate the anomaly rules and send alerts)",
)
MONTHLY_REPORT: Final = ScheduledJob(
    "monthly_report",
    "0 9 1 * *",
    "09:00 on the 1st: nexus report for the previous calendar month into "
    "<log dir>/finops_YYYY-MM.md",
    # A month between ticks would let a run weeks late pass as on time.
    match_within=timedelta(hours=1),
)

JOBS: Final[dict[str, ScheduledJob]] = {job.name: job for job in (ANOMALY_WATCH, MONTHLY_REPORT)}


def job_named(name: str, jobs: dict[str, ScheduledJob] = JOBS) -> ScheduledJob:
    """The job called `name`; a one-line ValueError listing the known jobs otherwise."""
    try:
        return jobs[name]
    except KeyError:
        raise ValueError(f"unknown job {name!r}: expected one of {', '.join(jobs)}") from None


def previous_month(day: date) -> tuple[date, date]:
    """The first and last day of the calendar month before the one `day` is in."""
    last = day.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def job_argv(name: str, now: datetime, *, log_dir: Path) -> list[str]:
    """The `nexus` arguments job `name` runs at `now` (its date is taken as it is given:
    cron starts jobs in the machine's local time, so pass a local `now`)."""
    job = job_named(name)
    if job.name == MONTHLY_REPORT.name:
        first, last = previous_month(now.date())
        out = log_dir / f"finops_{first:%Y-%m}.md"
        return ["report", "--from", first.isoformat(), "--to", last.isoformat(), "--out", str(out)]
    return ["anomaly"]
