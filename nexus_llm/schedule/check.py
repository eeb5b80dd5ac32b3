"""Did every expected tick run, and succeed? Expected ticks against recorded `job_run` events.

Pure logic: records in, a report out. Ticks come from each job's cron expression evaluated by
cronsim in the time zone cron runs in (the machine's), because `0 9 1 * *` in Seoul is a
different instant from the same line in UTC. A tick is matched by a run that started at or
after it and before the next tick (the monthly job: within its `match_within` of the tick);
a tick no run matched is *missed*, a tick whose runs all failed is *failed*. Extra runs (a
manual `nexus cron run`) are fine.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim

from .jobs import JOBS, ScheduledJob

MAX_SINCE: Final = timedelta(days=366)
_SINCE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
_SHOWN: Final = 5  # ticks named per list before "… and N more"


def parse_since(raw: str) -> timedelta:
    """`24h`, `90m`, `7d`, `2d12h` → a timedelta; a one-line ValueError otherwise."""
    text = raw.strip().lower()
    match = _SINCE.fullmatch(text)
    allowed = "a duration of days, hours and minutes such as 24h, 90m, 7d or 2d12h, up to 366d"
    if not text or match is None:
        raise ValueError(f"{raw!r} is not a duration: expected {allowed}")
    days, hours, minutes = (int(part) if part else 0 for part in match.groups())
    if max(days, hours, minutes) > 10**6:  # keeps timedelta from overflowing
        raise ValueError(f"{raw!r} is too long: expected {allowed}")
    span = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(0) < span <= MAX_SINCE:
        raise ValueError(f"{raw!r} is {'empty' if not span else 'too long'}: expected {allowed}")
    return span


def local_timezone() -> tzinfo:
    """The machine's time zone (the one cron uses), with its DST rules when they can be found.

    `TZ`, then the /etc/localtime link's zone name; else today's fixed UTC offset.
    """
    name = os.environ.get("TZ", "").strip().removeprefix(":")
    if not name:
        try:
            target = str(Path("/etc/localtime").resolve())
        except OSError:
            target = ""
        name = target.partition("/zoneinfo/")[2]
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or UTC


@dataclass(slots=True)
class JobReport:
    """One job over the checked range."""

    job: ScheduledJob
    expected: int = 0
    recorded: int = 0
    missed: list[datetime] = field(default_factory=list)
    failed: list[tuple[datetime, str]] = field(default_factory=list)
    last_success: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.missed and not self.failed

    @property
    def succeeded(self) -> int:
        return self.expected - len(self.missed) - len(self.failed)

    def describe(self, tz: tzinfo) -> str:
        """`expected N, ran M, missed K: <ticks>…, failed F: <tick> (<error>)…`."""
        if not self.expected:
            return f"expected 0, ran {self.recorded} (no tick in range)"
        parts = [f"expected {self.expected}", f"ran {self.recorded}"]
        missed = [_local(t, tz) for t in self.missed]
        parts.append(f"missed {len(missed)}" + (": " + _first_few(missed) if missed else ""))
        failed = [f"{_local(t, tz)} ({error})" for t, error in self.failed]
        parts.append(f"failed {len(failed)}" + (": " + _first_few(failed) if failed else ""))
        return ", ".join(parts)


@dataclass(slots=True)
class CronReport:
    """Every job's expected ticks against its recorded runs between `since` and `until`."""

    since: datetime
    until: datetime
    tz: tzinfo
    jobs: dict[str, JobReport]

    @property
    def ok(self) -> bool:
        return all(job.ok for job in self.jobs.values())

    def render(self) -> str:
        width = max((len(name) for name in self.jobs), default=0)
        lines = [
            f"nexus cron check {_local(self.since, self.tz)} .. {_local(self.until, self.tz)} "
            f"(ticks in {_tz_name(self.tz)})"
        ]
        for name, job in self.jobs.items():
            last = _local(job.last_success, self.tz) if job.last_success else "never"
            lines.append(
                f"  [{'OK' if job.ok else 'NG'}] {name.ljust(width)}  {job.job.schedule}: "
                f"{job.describe(self.tz)}; last success {last}"
            )
        lines.append(f"CRON {'OK' if self.ok else 'NG'}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Run:
    started: datetime
    ended: datetime | None
    ok: bool
    error: str


def check_runs(
    records: Iterable[Mapping[str, object]],
    *,
    since: datetime,
    until: datetime,
    tz: tzinfo,
    jobs: Mapping[str, ScheduledJob] = JOBS,
    grace: timedelta = timedelta(minutes=2),
) -> CronReport:
    """Compare each job's ticks in [since, until - grace] with its `job_run` records.

    `grace` leaves a tick that has only just come (its run may still be going) out of the
    count. Naive `since`/`until` are taken as times in `tz`.
    """
    since, until = _aware(since, tz), _aware(until, tz)
    runs = _runs_by_job(records, jobs)
    report = CronReport(since, until, tz, {})
    for name, job in jobs.items():
        job_runs = sorted(runs.get(name, []), key=lambda r: r.started)
        starts = [r.started for r in job_runs]
        result = JobReport(job)
        result.recorded = sum(1 for s in starts if since <= s <= until)
        successes = [r.ended or r.started for r in job_runs if r.ok]
        result.last_success = max(successes, default=None)
        ticks = expected_ticks(job.schedule, since, until - grace, tz)
        result.expected = len(ticks)
        for tick, window_end in _windows(job, ticks, until, tz):
            lo = bisect.bisect_left(starts, tick)
            hi = bisect.bisect_left(starts, window_end)
            matched = job_runs[lo:hi]
            if not matched:
                result.missed.append(tick)
            elif not any(r.ok for r in matched):
                result.failed.append((tick, matched[-1].error))
        report.jobs[name] = result
    return report


def expected_ticks(schedule: str, start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """The schedule's ticks in [start, end], as aware datetimes in `tz`."""
    if end < start:
        return []
    ticks: list[datetime] = []
    # cronsim yields ticks strictly after its start: begin a second early so `start` counts.
    for tick in CronSim(schedule, start.astimezone(tz) - timedelta(seconds=1)):
        if tick > end:
            break
        if tick >= start:
            ticks.append(tick)
    return ticks


def _windows(
    job: ScheduledJob, ticks: list[datetime], until: datetime, tz: tzinfo
) -> Iterable[tuple[datetime, datetime]]:
    """Each tick with the end (exclusive) of the time its run may start in."""
    if not ticks:
        return []
    following = next(iter(CronSim(job.schedule, ticks[-1])))
    ends = [*ticks[1:], following]
    if job.match_within is not None:
        ends = [min(end, tick + job.match_within) for tick, end in zip(ticks, ends, strict=True)]
    return zip(ticks, ends, strict=True)


def _runs_by_job(
    records: Iterable[Mapping[str, object]], jobs: Mapping[str, ScheduledJob]
) -> dict[str, list[_Run]]:
    runs: dict[str, list[_Run]] = {}
    for record in records:
        name = record.get("job")
        if record.get("event") != "job_run" or not isinstance(name, str) or name not in jobs:
            continue
        started = _instant(record.get("started_at")) or _instant(record.get("ts"))
        if started is None:
            continue  # a run we cannot place in time cannot match a tick
        ok = record.get("outcome") == "ok"
        error = record.get("error")
        if not ok and not isinstance(error, str):
            error = f"outcome {record.get('outcome')!r}, exit code {record.get('exit_code')!r}"
        runs.setdefault(name, []).append(
            _Run(started, _instant(record.get("ended_at")), ok, str(error or ""))
        )
    return runs


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _aware(moment: datetime, tz: tzinfo) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _local(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="minutes")


def _tz_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz.tzname(None) or tz)


def _first_few(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    more = len(items) - _SHOWN
    return shown + (f" … and {more} more" if more > 0 else "")
