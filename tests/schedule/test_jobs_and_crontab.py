"""The seed's jobs as data, one recorded run, and the crontab a user installs."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from nexus_llm.observe.audit import AuditLog
from nexus_llm.schedule.crontab import render_crontab
from nexus_llm.schedule.jobs import JOBS, job_argv, job_named, previous_month
from nexus_llm.schedule.runs import describe_exception, run_job

GAUGE = "nexus_job_last_success_timestamp_seconds"


class StepClock:
    """Each call returns the next moment, `step` after the previous one."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now = start - step
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestJobs:
    def test_the_seed_schedules(self) -> None:
        """The two jobs carry the seed's cron expressions and the alert rules' job names."""
        assert {name: job.schedule for name, job in JOBS.items()} == {
            "anomaly_watch": "*/5 * * * *",
            "monthly_report": "0 9 1 * *",
        }

    def test_anomaly_watch_runs_anomaly(self, tmp_path: Path) -> None:
        """The watch runs `nexus anomaly` whatever the time."""
        assert job_argv("anomaly_watch", datetime(2026, 5, 5, 10, 5), log_dir=tmp_path) == [
            "anomaly"
        ]

    @pytest.mark.parametrize(
        ("now", "first", "last"),
        [
            (datetime(2026, 1, 1, 9, 0), "2025-12-01", "2025-12-31"),
            (datetime(2026, 3, 1, 9, 0), "2026-02-01", "2026-02-28"),
            (datetime(2028, 3, 1, 9, 0), "2028-02-01", "2028-02-29"),
            (datetime(2026, 8, 17, 13, 0, tzinfo=UTC), "2026-07-01", "2026-07-31"),
        ],
    )
    def test_monthly_report_covers_the_previous_month(
        self, tmp_path: Path, now: datetime, first: str, last: str
    ) -> None:
        """The report covers the whole previous calendar month, into finops_YYYY-MM.md."""
        argv = job_argv("monthly_report", now, log_dir=tmp_path)
        out = str(tmp_path / f"finops_{first[:7]}.md")
        assert argv == ["report", "--from", first, "--to", last, "--out", out]

    def test_previous_month_of_the_first_and_the_last_day(self) -> None:
        """Any day of a month gives the same previous month."""
        d1 = datetime(2026, 5, 1).date()
        d31 = datetime(2026, 5, 31).date()
        assert previous_month(d1) == previous_month(d31)

    def test_unknown_job_is_one_line(self) -> None:
        """An unknown job name is a one-line error listing the jobs."""
        with pytest.raises(ValueError, match="anomaly_watch, monthly_report") as info:
            job_named("nightly")
        assert "\n" not in str(info.value)


class TestRunJob:
    START = datetime(2026, 4, 1, 0, 0, 10, tzinfo=UTC)

    def test_ok_run_writes_one_event_and_sets_the_gauge(self, tmp_path: Path) -> None:
        """A run returning 0 leaves one job_run event with every field and sets the gauge."""
        audit = AuditLog(tmp_path / "audit.jsonl", env="test")
        clock = StepClock(self.START, timedelta(seconds=2.5))
        assert run_job("job_ok_fields", lambda: 0, audit=audit, clock=clock) == 0
        [event] = events(audit.path)
        assert event == {
            "ts": event["ts"],
            "event": "job_run",
            "env": "test",
            "job": "job_ok_fields",
            "started_at": "2026-04-01T00:00:10.000Z",
            "ended_at": "2026-04-01T00:00:12.500Z",
            "duration_s": 2.5,
            "outcome": "ok",
            "exit_code": 0,
        }
        ended = self.START + timedelta(seconds=2.5)
        assert REGISTRY.get_sample_value(GAUGE, {"job": "job_ok_fields"}) == ended.timestamp()

    def test_non_zero_exit_is_a_failure_and_leaves_the_gauge(self, tmp_path: Path) -> None:
        """Exit code 1 is recorded as failed with its meaning; the gauge is not touched."""
        audit = AuditLog(tmp_path / "audit.jsonl", env="test")
        assert run_job("job_ng", lambda: 1, audit=audit) == 1
        [event] = events(audit.path)
        assert event["outcome"] == "failed"
        assert event["exit_code"] == 1
        assert event["error"] == "exit code 1 (the check is NG)"
        assert REGISTRY.get_sample_value(GAUGE, {"job": "job_ng"}) is None

    def test_an_exception_is_exit_3_with_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An exception in the action is caught: exit 3, its type and first line, no traceback."""
        audit = AuditLog(tmp_path / "audit.jsonl", env="test")
        seen: list[str] = []

        def boom() -> int:
            raise PermissionError("logs/finops.md: permission denied\nsecond line")

        assert run_job("job_raises", boom, audit=audit, on_error=seen.append) == 3
        [event] = events(audit.path)
        assert event["error"] == "PermissionError: logs/finops.md: permission denied"
        assert event["exit_code"] == 3
        assert seen == [event["error"]]
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err

    def test_system_exit_keeps_its_code(self, tmp_path: Path) -> None:
        """argparse exiting inside the action (bad flags) is that exit code, not a crash."""
        audit = AuditLog(tmp_path / "audit.jsonl", env="test")

        def bad_flags() -> int:
            raise SystemExit(2)

        assert run_job("job_exit", bad_flags, audit=audit) == 2
        assert events(audit.path)[0]["error"] == "exit code 2 (bad input or config)"

    def test_describe_exception_without_message(self) -> None:
        """An exception with no message is named by its type alone."""
        assert describe_exception(TimeoutError()) == "TimeoutError"


# Five schedule fields, then a command: what `crontab -e` accepts for a job line.
JOB_LINE = re.compile(r"^(\S+ ){5}\S.*$")
FIELD = re.compile(r"^[\d*/,-]+$")


def job_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


class TestCrontab:
    def test_line_format_paths_and_redirection(self, tmp_path: Path) -> None:
        """Each job line is 5 fields then `cd … && nexus cron run JOB >> log 2>&1`."""
        work = tmp_path / "my app"
        text = render_crontab(
            nexus=Path("/opt/nexus/bin/nexus"),
            workdir=work,
            env_file=None,
            log_dir=work / "logs",
        )
        assert text.startswith("#")
        lines = job_lines(text)
        assert lines[0] == "SHELL=/bin/sh"
        assert len(lines) == 1 + len(JOBS)
        for line, job in zip(lines[1:], JOBS.values(), strict=True):
            assert JOB_LINE.match(line)
            fields = line.split(" ", 5)
            assert " ".join(fields[:5]) == job.schedule
            assert all(FIELD.match(f) for f in fields[:5])
            argv = shlex.split(fields[5])
            assert argv[:3] == ["cd", str(work), "&&"]
            assert argv[3:6] == ["/opt/nexus/bin/nexus", "cron", "run"]
            assert argv[6] == job.name
            assert argv[7:] == [">>", str(work / "logs" / f"cron_{job.name}.log"), "2>&1"]
            assert f"'{work}'" in line  # the space is quoted

    def test_header_says_how_to_install_and_check(self, tmp_path: Path) -> None:
        """The header names the generator, crontab -e, local time and the check command."""
        text = render_crontab(
            nexus=tmp_path / "nexus", workdir=tmp_path, env_file=None, log_dir=tmp_path
        )
        header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        for words in ("nexus cron print", "crontab -e", "local time", "nexus cron check --since"):
            assert words in header
        assert "env file readable only by the cron user" in header

    def test_env_file_is_passed_to_nexus_not_sourced(self, tmp_path: Path) -> None:
        """With an env file, each line hands it to `nexus cron run --env-file` (which reads it
        with dotenv rules); a shell `.` would cut a Teams Workflows URL at its first `&`."""
        env = tmp_path / "nexus.env"
        text = render_crontab(
            nexus=tmp_path / "nexus", workdir=tmp_path, env_file=env, log_dir=tmp_path
        )
        for line, job in zip(job_lines(text)[1:], ("anomaly_watch", "monthly_report"), strict=True):
            assert f"&& {tmp_path / 'nexus'} cron run {job} --env-file {env} >> " in line
            assert " . " not in line

    def test_percent_is_escaped(self, tmp_path: Path) -> None:
        """A `%` in a path is escaped, since cron turns a bare one into a newline."""
        text = render_crontab(
            nexus=tmp_path / "nexus", workdir=tmp_path / "100%", env_file=None, log_dir=tmp_path
        )
        for line in job_lines(text)[1:]:
            assert re.search(r"(?<!\\)%", line) is None
            assert "100\\%" in line

    @pytest.mark.parametrize("which", ["nexus", "workdir", "env_file", "log_dir"])
    def test_relative_path_is_refused(self, tmp_path: Path, which: str) -> None:
        """A relative path is a one-line ValueError: cron would resolve it from $HOME."""
        paths: dict[str, Path] = {
            "nexus": tmp_path / "nexus",
            "workdir": tmp_path,
            "env_file": tmp_path / "env",
            "log_dir": tmp_path,
        }
        paths[which] = Path("relative/x")
        with pytest.raises(ValueError, match="must be absolute") as info:
            render_crontab(
                nexus=paths["nexus"],
                workdir=paths["workdir"],
                env_file=paths["env_file"],
                log_dir=paths["log_dir"],
            )
        assert "\n" not in str(info.value)

    def test_a_line_runs_under_sh_as_cron_would(self, tmp_path: Path) -> None:
        """The command part, run by /bin/sh like cron does, passes the env file and logs."""
        root = tmp_path / "dir with space"
        (root / "logs").mkdir(parents=True)
        nexus = root / "nexus"
        nexus.write_text('#!/bin/sh\necho "pwd=$(pwd) args=$*"\n')
        nexus.chmod(0o755)
        env = root / "nexus.env"
        env.write_text("NEXUS_TEST_TOKEN=from-env-file\n")
        text = render_crontab(nexus=nexus, workdir=root, env_file=env, log_dir=root / "logs")
        line = job_lines(text)[1]
        command = line.split(" ", 5)[5]
        subprocess.run(["/bin/sh", "-c", command], check=True, env={"PATH": "/usr/bin:/bin"})
        log = (root / "logs" / "cron_anomaly_watch.log").read_text()
        assert log == f"pwd={root} args=cron run anomaly_watch --env-file {env}\n"
