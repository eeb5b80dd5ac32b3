"""Check 7 — the cron jobs ran at every expected tick, and succeeded (seed §C.7).

The evidence is the `job_run` events `nexus cron run` writes to the audit log. The audit log
is the busiest file Nexus has (every call leaves lines in it), so the reader looks for the
event name in the raw bytes first and parses only the lines that can be a `job_run`.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from nexus_llm.observe.audit import utc_now
from nexus_llm.observe.jsonl import ReadStats, expand_sources, parse_line
from nexus_llm.schedule.check import CronReport, check_runs, local_timezone

from .result import CheckResult

SEED_NG_HINT = (
    "missed runs through log / path / permission problems — check the crontab "
    "(nexus cron print), the job logs under the log dir, and that the environment file is "
    "readable"
)
THRESHOLD = "every expected tick ran and succeeded"
_MARK = b'"job_run"'


def read_job_runs(audit_path: Path) -> tuple[list[dict[str, object]], ReadStats]:
    """Every `job_run` event in the audit log and its rotations; damaged lines are counted."""
    stats = ReadStats()
    records: list[dict[str, object]] = []
    for path in expand_sources([audit_path]):
        stats.files.append(path)
        try:
            with _open(path) as handle:
                records.extend(_job_runs(handle, stats))
        except (EOFError, OSError, zlib.error):
            # A rotation still being compressed, or unreadable: keep what was read, say so.
            stats.damaged_files.append(path)
            stats.skipped_partial += 1
    return records, stats


def _open(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _job_runs(handle: io.BufferedIOBase, stats: ReadStats) -> Iterator[dict[str, object]]:
    for raw in handle:
        stats.lines += 1
        if _MARK not in raw:
            continue  # not a job_run line: whole or damaged, it is not this check's business
        record = parse_line(raw)
        if record is None:
            if not raw.endswith(b"\n"):
                stats.skipped_partial += 1
            else:
                stats.skipped_corrupt += 1
        elif record.get("event") == "job_run":
            yield record


def run_cron_check(
    audit_path: Path,
    *,
    since: timedelta,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> CheckResult:
    """One finding per job: its expected ticks in the last `since` against its recorded runs.

    `tz` is the zone cron runs jobs in (default: this machine's).
    """
    result = CheckResult("cron", threshold=THRESHOLD, hint=SEED_NG_HINT)
    until = now if now is not None else utc_now()
    if not expand_sources([audit_path]):
        result.add(
            "audit log",
            False,
            f"{audit_path} does not exist: no job has recorded a run (is the crontab installed "
            "and LLM_AUDIT_LOG_PATH the same for cron?)",
        )
        result.measured = "no audit log"
        return result
    records, stats = read_job_runs(audit_path)
    report = check_runs(
        records, since=until - since, until=until, tz=tz if tz is not None else local_timezone()
    )
    add_findings(result, report)
    if stats.skipped:
        result.measured += f"; {stats.describe()}"
    return result


def add_findings(result: CheckResult, report: CronReport) -> None:
    """One finding per job, and the `succeeded/expected` numbers as the measured value."""
    measured: list[str] = []
    for name, job in report.jobs.items():
        result.add(name, job.ok, job.describe(report.tz))
        none = " (no tick in range)" if not job.expected else ""
        measured.append(f"{name} {job.succeeded}/{job.expected}{none}")
    result.measured = ", ".join(measured)
