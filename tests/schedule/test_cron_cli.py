"""`nexus cron print|check|run`, called through `nexus`'s own main as a user runs them."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from prometheus_client import REGISTRY

from nexus_llm.observe.audit import iso_ts
from pytest_nexus_rehearsal import cli
from pytest_nexus_rehearsal.cli_cron import add_cron_parser

Nexus = Callable[..., tuple[int, str, str]]
SEOUL_DAY_END = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)


@pytest.fixture
def nexus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Nexus:
    """`nexus ARGS…` in-process, in tmp_path, with no Nexus setting from the outer
    environment; returns (exit code, stdout, stderr)."""
    for name in list(os.environ):
        if name.startswith(("LLM_", "NEXUS_", "ANOMALY_", "PROMETHEUS_MULTIPROC")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    built = cli.build_parser

    def with_cron() -> argparse.ArgumentParser:
        # Until cli.build_parser registers `cron` itself, add it here (once).
        parser = built()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and "cron" not in action.choices:
                add_cron_parser(action)
        return parser

    monkeypatch.setattr(cli, "build_parser", with_cron)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def write_day(audit: Path, *, skip: int | None = None) -> None:
    """A day of successful anomaly_watch runs ending at SEOUL_DAY_END, one tick optionally
    left out."""
    audit.parent.mkdir(parents=True, exist_ok=True)
    start = SEOUL_DAY_END - timedelta(hours=24)
    with audit.open("w") as out:
        for i in range(288):
            if i == skip:
                continue
            began = start + timedelta(minutes=5 * i, seconds=15)
            record = {
                "ts": iso_ts(began + timedelta(seconds=1)),
                "event": "job_run",
                "env": "test",
                "job": "anomaly_watch",
                "started_at": iso_ts(began),
                "ended_at": iso_ts(began + timedelta(seconds=1)),
                "duration_s": 1.0,
                "outcome": "ok",
                "exit_code": 0,
            }
            out.write(json.dumps(record) + "\n")


class TestCheck:
    def test_a_full_day_exits_0(self, nexus: Nexus, tmp_path: Path) -> None:
        """Every tick recorded: exit 0 and CRON OK."""
        audit = tmp_path / "logs" / "llm_audit.jsonl"
        write_day(audit)
        with freeze_time(SEOUL_DAY_END):
            code, out, _ = nexus("cron", "check", "--since", "24h", "--audit", str(audit))
        assert code == 0, out
        assert "expected 288, ran 288, missed 0, failed 0" in out
        assert out.rstrip().endswith("CRON OK")

    def test_a_missed_tick_exits_1_and_is_named(
        self, nexus: Nexus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One tick missing: exit 1, and the tick is named in the --tz zone. The audit log
        comes from LLM_AUDIT_LOG_PATH by default."""
        audit = tmp_path / "logs" / "llm_audit.jsonl"
        write_day(audit, skip=12)
        monkeypatch.setenv("LLM_AUDIT_LOG_PATH", str(audit))
        with freeze_time(SEOUL_DAY_END):
            code, out, _ = nexus("cron", "check", "--since", "24h", "--tz", "Asia/Seoul")
        assert code == 1
        assert "missed 1: 2026-03-10T10:00+09:00" in out
        assert "CRON NG" in out
        assert "what to check: missed runs through log / path / permission problems" in out

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--since", "yesterday"], "--since: 'yesterday' is not a duration"),
            (["--since", "24h", "--tz", "Mars/Olympus"], "--tz 'Mars/Olympus': unknown time zone"),
            (["--audit", "missing.jsonl"], "--audit missing.jsonl: no such file"),
            ([], "LLM_AUDIT_LOG_PATH logs/llm_audit.jsonl: no such file"),
        ],
        ids=["since", "tz", "audit", "default-audit"],
    )
    def test_bad_input_exits_2_with_one_line(
        self, nexus: Nexus, argv: list[str], message: str
    ) -> None:
        """Bad --since, unknown --tz, a missing audit log: exit 2, one line, no traceback."""
        code, out, err = nexus("cron", "check", *argv)
        assert code == 2
        assert out == ""
        assert one_line_error(err).startswith(f"nexus cron check: {message}")


class TestPrint:
    def test_prints_a_crontab_with_absolute_quoted_paths(
        self, nexus: Nexus, tmp_path: Path
    ) -> None:
        """Relative flags become absolute, quoted paths; notes go to stderr, not the crontab."""
        work = tmp_path / "my app"
        work.mkdir()
        env = work / "nexus.env"
        env.write_text("GEMINI_API_KEY=x\n")
        env.chmod(0o644)
        code, out, err = nexus(
            "cron",
            "print",
            "--workdir",
            "my app",
            "--env-file",
            "my app/nexus.env",
            "--log-dir",
            "my app/logs",
        )
        assert code == 0, err
        jobs = [line for line in out.splitlines() if line and not line.startswith("#")]
        assert jobs[0] == "SHELL=/bin/sh"
        assert jobs[1].startswith(f"*/5 * * * * cd '{work}' && ")
        assert f"cron run anomaly_watch --env-file '{env}' >> " in jobs[1]
        assert jobs[2].endswith(
            f"cron run monthly_report --env-file '{env}' >> "
            f"'{work}/logs/cron_monthly_report.log' 2>&1"
        )
        assert "does not exist yet" in err
        assert "chmod 600" in err
        assert "Traceback" not in err

    def test_defaults_come_from_the_environment(
        self, nexus: Nexus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without flags: workdir = cwd, log dir = LLM_AUDIT_LOG_PATH's directory, and the
        nexus script of this installation; the header says secrets belong in an env file."""
        monkeypatch.setenv("LLM_AUDIT_LOG_PATH", "var/audit/llm_audit.jsonl")
        code, out, _ = nexus("cron", "print")
        assert code == 0
        line = next(line for line in out.splitlines() if line.startswith("*/5"))
        command = line.split(" ", 5)[5]
        nexus_path = command.split(" && ")[1].split(" ")[0]
        assert Path(nexus_path).is_absolute()
        assert Path(nexus_path).name == "nexus"
        assert command.startswith(f"cd {tmp_path} && ")
        assert f">> {tmp_path}/var/audit/cron_anomaly_watch.log 2>&1" in command
        assert "env file readable only by the cron user" in out

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--env-file", "absent.env"], "--env-file absent.env: no such file"),
            (["--workdir", "nowhere"], "--workdir nowhere: no such directory"),
            (["--nexus", "bin/nexus"], "--nexus bin/nexus: no such file"),
        ],
        ids=["env-file", "workdir", "nexus"],
    )
    def test_bad_paths_exit_2_with_one_line(
        self, nexus: Nexus, argv: list[str], message: str
    ) -> None:
        """A missing env file, work directory or nexus: exit 2, one line, nothing printed."""
        code, out, err = nexus("cron", "print", *argv)
        assert code == 2
        assert out == ""
        assert one_line_error(err) == f"nexus cron print: {message}"


LEDGER_LINE = {
    "env": "test",
    "provider": "gemini",
    "model": "gemini-2.5-flash",
    "team": "ops",
    "project": "finops",
    "purpose": "ops",
    "input_tokens": 1000,
    "output_tokens": 200,
    "cached_tokens": 0,
    "reasoning_tokens": 0,
    "actual_cost_usd": 1.5,
    "approx_tokens": False,
    "price_version": "test",
    "dedupe_hit": False,
    "saved_cost_usd": 0.0,
    "priced": True,
}


class TestRun:
    @pytest.fixture
    def logs(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
        logs = tmp_path / "logs"
        monkeypatch.setenv("LLM_AUDIT_LOG_PATH", str(logs / "llm_audit.jsonl"))
        monkeypatch.setenv("LLM_COST_LEDGER_PATH", str(logs / "llm_cost_ledger.jsonl"))
        return logs

    def events(self, logs: Path) -> list[dict[str, object]]:
        lines = (logs / "llm_audit.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def test_monthly_report_writes_the_report_and_a_job_run(self, nexus: Nexus, logs: Path) -> None:
        """On the 1st, the job reports the previous month into finops_YYYY-MM.md, records a
        successful job_run and sets the last-success gauge."""
        logs.mkdir()
        with (logs / "llm_cost_ledger.jsonl").open("w") as ledger:
            for i, day in enumerate(("2026-01-05", "2026-01-20", "2026-02-01")):
                line = {"ts": f"{day}T10:00:00.000Z", "request_id": f"r{i}", **LEDGER_LINE}
                ledger.write(json.dumps(line) + "\n")
        # Midday UTC: the 1st of February in every time zone this test may run in.
        with freeze_time("2026-02-01T12:00:00Z"):
            code, out, err = nexus("cron", "run", "monthly_report")
        assert code == 0, err
        report = (logs / "finops_2026-01.md").read_text()
        assert "$3.00" in report  # the two January lines, not February's
        assert "monthly_report: ok (exit 0)" in out
        [event] = self.events(logs)
        assert event["event"] == "job_run"
        assert event["job"] == "monthly_report"
        assert (event["outcome"], event["exit_code"]) == ("ok", 0)
        assert event["started_at"] == "2026-02-01T12:00:00.000Z"
        assert "error" not in event
        gauge = REGISTRY.get_sample_value(
            "nexus_job_last_success_timestamp_seconds", {"job": "monthly_report"}
        )
        assert gauge == datetime(2026, 2, 1, 12, tzinfo=UTC).timestamp()

    def test_a_failing_job_is_recorded_with_its_error(self, nexus: Nexus, logs: Path) -> None:
        """No ledger: the report fails (exit 2), and the job_run says failed and why."""
        code, _, err = nexus("cron", "run", "monthly_report")
        assert code == 2
        assert "Traceback" not in err
        [event] = self.events(logs)
        assert (event["outcome"], event["exit_code"]) == ("failed", 2)
        assert event["error"] == "exit code 2 (bad input or config)"
        assert "monthly_report: exit code 2 (bad input or config)" in err

    def test_unknown_job_exits_2_listing_the_jobs(self, nexus: Nexus, logs: Path) -> None:
        """An unknown job is one line naming the real ones, and nothing is recorded."""
        code, _, err = nexus("cron", "run", "nightly")
        assert code == 2
        assert one_line_error(err) == (
            "nexus cron run: unknown job 'nightly': expected one of anomaly_watch, monthly_report"
        )
        assert not (logs / "llm_audit.jsonl").exists()
