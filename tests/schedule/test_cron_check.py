"""Expected ticks against recorded runs: a simulated day, a month boundary, damaged logs."""

from __future__ import annotations

import gzip
import json
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from prometheus_client import REGISTRY

from nexus_llm.observe.audit import AuditLog, iso_ts
from nexus_llm.schedule.check import check_runs, expected_ticks, parse_since
from nexus_llm.schedule.jobs import JOBS, job_argv
from nexus_llm.schedule.runs import run_job
from pytest_nexus_rehearsal.checks.cron import SEED_NG_HINT, read_job_runs, run_cron_check

SEOUL = ZoneInfo("Asia/Seoul")
DAY_START = datetime(2026, 3, 10, 0, 0, tzinfo=SEOUL)  # 2026-03-09T15:00Z
DAY_END = DAY_START + timedelta(hours=24)
SKIPPED = 37  # the tick cron never started
FAILED = 100  # the run that returned 1
RAISED = 200  # the run whose action raised


def simulate_day(
    audit: AuditLog,
    *,
    skip: Collection[int] = (),
    fail: Collection[int] = (),
    raise_at: Collection[int] = (),
) -> list[datetime]:
    """Run anomaly_watch via run_job at every */5 tick of one Seoul day, 20 s late, each
    taking 3 s; returns the ticks."""
    ticks = [DAY_START + timedelta(minutes=5 * i) for i in range(288)]
    with freeze_time(DAY_START) as frozen:
        for i, tick in enumerate(ticks):
            if i in skip:
                continue
            frozen.move_to(tick + timedelta(seconds=20))

            def action(i: int = i) -> int:
                frozen.tick(3)
                if i in raise_at:
                    raise OSError("logs/llm_audit.jsonl: Permission denied")
                return 1 if i in fail else 0

            run_job("anomaly_watch", action, audit=audit)
    return ticks


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "logs" / "llm_audit.jsonl", env="test")


class TestSimulatedDay:
    def test_missed_and_failed_ticks_are_named(self, audit: AuditLog) -> None:
        """One skipped tick is missed, and the run returning 1 and the one raising are failed."""
        ticks = simulate_day(audit, skip={SKIPPED}, fail={FAILED}, raise_at={RAISED})
        records, stats = read_job_runs(audit.path)
        assert stats.skipped == 0
        report = check_runs(records, since=DAY_START, until=DAY_END, tz=SEOUL)
        watch = report.jobs["anomaly_watch"]
        assert (watch.expected, watch.recorded) == (288, 287)
        assert watch.missed == [ticks[SKIPPED]]
        assert watch.failed == [
            (ticks[FAILED], "exit code 1 (the check is NG)"),
            (ticks[RAISED], "OSError: logs/llm_audit.jsonl: Permission denied"),
        ]
        assert watch.last_success == ticks[-1] + timedelta(seconds=23)
        assert not report.ok
        text = report.render()
        assert "expected 288, ran 287, missed 1: 2026-03-10T03:05+09:00, failed 2: " in text
        assert "2026-03-10T08:20+09:00 (exit code 1 (the check is NG))" in text
        assert text.endswith("CRON NG")

    def test_the_check_names_them_too(self, audit: AuditLog) -> None:
        """run_cron_check: NG, the missed tick and failure in the evidence, the seed's hint."""
        ticks = simulate_day(audit, skip={SKIPPED}, fail={FAILED})
        result = run_cron_check(audit.path, since=timedelta(hours=24), now=DAY_END, tz=SEOUL)
        assert result.check == "cron"
        assert not result.ok
        assert result.measured == "anomaly_watch 286/288, monthly_report 0/0 (no tick in range)"
        assert result.hint == SEED_NG_HINT
        findings = {f.name: f for f in result.findings}
        assert set(findings) == set(JOBS)
        assert not findings["anomaly_watch"].ok
        assert ticks[SKIPPED].isoformat(timespec="minutes") in findings["anomaly_watch"].detail
        assert ticks[FAILED].isoformat(timespec="minutes") in findings["anomaly_watch"].detail
        assert findings["monthly_report"].ok
        assert "no tick in range" in findings["monthly_report"].detail

    def test_a_full_day_is_ok_and_sets_the_gauge(self, audit: AuditLog) -> None:
        """Every one of the 288 ticks ran and succeeded: OK, and the gauge holds the last run."""
        ticks = simulate_day(audit)
        result = run_cron_check(audit.path, since=timedelta(hours=24), now=DAY_END, tz=SEOUL)
        assert result.ok, result.render(header="cron")
        assert result.measured.startswith("anomaly_watch 288/288,")
        assert result.threshold == "every expected tick ran and succeeded"
        last_end = ticks[-1] + timedelta(seconds=23)
        gauge = REGISTRY.get_sample_value(
            "nexus_job_last_success_timestamp_seconds", {"job": "anomaly_watch"}
        )
        assert gauge == last_end.timestamp()

    def test_a_retry_in_the_same_window_covers_a_failure(self, audit: AuditLog) -> None:
        """A failed run followed by a successful one before the next tick is not a failure."""
        simulate_day(audit, fail={FAILED})
        tick = DAY_START + timedelta(minutes=5 * FAILED)
        with freeze_time(tick + timedelta(minutes=2)):
            run_job("anomaly_watch", lambda: 0, audit=audit)
        records, _ = read_job_runs(audit.path)
        assert check_runs(records, since=DAY_START, until=DAY_END, tz=SEOUL).ok

    def test_ticks_inside_the_grace_are_not_expected(self) -> None:
        """A tick under two minutes old is not counted: its run may still be starting."""
        until = DAY_START + timedelta(minutes=11)
        report = check_runs([], since=DAY_START, until=until, tz=SEOUL)
        assert report.jobs["anomaly_watch"].missed == [DAY_START, DAY_START + timedelta(minutes=5)]
        later = check_runs([], since=DAY_START, until=until + timedelta(minutes=1), tz=SEOUL)
        assert later.jobs["anomaly_watch"].expected == 3


def job_run(job: str, started: datetime, outcome: str = "ok") -> dict[str, object]:
    return {
        "ts": iso_ts(started + timedelta(seconds=5)),
        "event": "job_run",
        "job": job,
        "started_at": iso_ts(started),
        "ended_at": iso_ts(started + timedelta(seconds=5)),
        "outcome": outcome,
        "exit_code": 0 if outcome == "ok" else 1,
    }


class TestMonthlyReport:
    SINCE = datetime(2026, 1, 31, 12, 0, tzinfo=SEOUL)
    UNTIL = datetime(2026, 2, 1, 12, 0, tzinfo=SEOUL)
    TICK = datetime(2026, 2, 1, 9, 0, tzinfo=SEOUL)  # 2026-02-01T00:00Z

    def test_the_tick_is_nine_o_clock_local_on_the_first(self) -> None:
        """In Seoul, 0 9 1 * * is midnight UTC on the 1st: cronsim evaluates in the zone."""
        ticks = expected_ticks("0 9 1 * *", self.SINCE, self.UNTIL, SEOUL)
        assert ticks == [self.TICK]
        assert ticks[0].astimezone(UTC) == datetime(2026, 2, 1, 0, 0, tzinfo=UTC)

    def test_a_run_at_the_local_tick_matches(self, audit: AuditLog) -> None:
        """A run 30 s after 09:00 Seoul on the 1st matches; it reports on January."""
        with freeze_time(self.TICK + timedelta(seconds=30)):
            now = datetime.now(UTC).astimezone(SEOUL)
            argv = job_argv("monthly_report", now, log_dir=Path("/logs"))
            run_job("monthly_report", lambda: 0, audit=audit)
        assert argv[1:5] == ["--from", "2026-01-01", "--to", "2026-01-31"]
        records, _ = read_job_runs(audit.path)
        report = check_runs(records, since=self.SINCE, until=self.UNTIL, tz=SEOUL)
        monthly = report.jobs["monthly_report"]
        assert (monthly.expected, monthly.recorded, monthly.ok) == (1, 1, True)

    @pytest.mark.parametrize(
        "started",
        [
            datetime(2026, 2, 1, 9, 0, tzinfo=UTC),  # cron on UTC: 09:00Z is 18:00 in Seoul
            datetime(2026, 2, 1, 10, 30, tzinfo=SEOUL),  # 90 minutes late
            datetime(2026, 2, 1, 8, 59, tzinfo=SEOUL),  # before the tick
        ],
        ids=["utc-crontab", "late", "early"],
    )
    def test_a_run_outside_the_hour_is_a_miss(self, started: datetime) -> None:
        """The monthly tick needs a run within an hour after it, not just before the next."""
        report = check_runs(
            [job_run("monthly_report", started)],
            since=self.SINCE,
            until=self.UNTIL + timedelta(hours=12),
            tz=SEOUL,
        )
        assert report.jobs["monthly_report"].missed == [self.TICK]

    def test_the_same_crontab_in_utc_expects_nine_utc(self) -> None:
        """Evaluated in UTC, the tick is 09:00Z, so the Seoul-time run does not match it."""
        report = check_runs(
            [job_run("monthly_report", self.TICK)],
            since=datetime(2026, 1, 31, tzinfo=UTC),
            until=datetime(2026, 2, 2, tzinfo=UTC),
            tz=UTC,
        )
        assert report.jobs["monthly_report"].missed == [datetime(2026, 2, 1, 9, 0, tzinfo=UTC)]


class TestReading:
    def test_rotations_and_damage(self, tmp_path: Path) -> None:
        """job_run lines come from the log and its rotations; damaged job_run lines are
        counted, other lines are not even parsed."""
        log = tmp_path / "audit.jsonl"
        start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        runs = [
            json.dumps(job_run("anomaly_watch", start + timedelta(minutes=5 * i))) for i in range(3)
        ]
        with gzip.open(tmp_path / "audit.jsonl.2.gz", "wt") as old:
            old.write(runs[0] + "\n")
        (tmp_path / "audit.jsonl.1").write_text(
            runs[1] + "\n" + '{"event":"job_run","job":\n' + "not json at all\n"
        )
        log.write_text(
            '{"event":"llm_success","request_id":"r"}\n' + runs[2] + "\n" + '{"event":"job_run"'
        )
        records, stats = read_job_runs(log)
        assert [r["started_at"] for r in records] == [
            iso_ts(start + timedelta(minutes=5 * i)) for i in range(3)
        ]
        assert (stats.skipped_corrupt, stats.skipped_partial) == (1, 1)
        assert len(stats.files) == 3

    def test_missing_audit_log_is_ng_not_a_pass(self, tmp_path: Path) -> None:
        """No audit log means no evidence: NG with a finding that says why."""
        result = run_cron_check(tmp_path / "none.jsonl", since=timedelta(hours=24))
        assert not result.ok
        assert "does not exist" in result.findings[0].detail

    def test_other_jobs_and_events_are_ignored(self) -> None:
        """Records of unknown jobs, other events or without a time never match a tick."""
        start = DAY_START
        records: list[dict[str, object]] = [
            job_run("nightly", start),
            {**job_run("anomaly_watch", start), "event": "llm_success"},
            {"event": "job_run", "job": "anomaly_watch", "started_at": "yesterday"},
        ]
        report = check_runs(records, since=start, until=start + timedelta(minutes=3), tz=SEOUL)
        assert report.jobs["anomaly_watch"].missed == [start]
        assert report.jobs["anomaly_watch"].recorded == 0


class TestParseSince:
    @pytest.mark.parametrize(
        ("raw", "span"),
        [
            ("24h", timedelta(hours=24)),
            ("90m", timedelta(minutes=90)),
            ("7d", timedelta(days=7)),
            ("2d12h", timedelta(days=2, hours=12)),
            (" 1D ", timedelta(days=1)),
        ],
    )
    def test_durations(self, raw: str, span: timedelta) -> None:
        """Days, hours and minutes, alone or combined in that order."""
        assert parse_since(raw) == span

    @pytest.mark.parametrize("raw", ["", "24", "h", "1h2d", "-1h", "0h", "1.5h", "367d", "9" * 30])
    def test_bad_values_name_what_is_allowed(self, raw: str) -> None:
        """Anything else is a one-line error naming the accepted forms."""
        with pytest.raises(ValueError, match="24h, 90m, 7d or 2d12h") as info:
            parse_since(raw)
        assert "\n" not in str(info.value)
