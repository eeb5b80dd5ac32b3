"""`nexus anomaly` (check 3): the seed's dry run, the real send, and each NG path's exit code."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nexus_llm.observe.audit import iso_ts
from nexus_llm.observe.jsonl import JsonlAppender
from pytest_nexus_rehearsal.sink import WebhookSink
from tests.cli.test_smoke_command import HARNESS, NEXUS, run
from tests.support import jsonl_lines


def spend(cwd: Path, usd: float) -> None:
    """A ledger line a minute ago, where the default LLM_COST_LEDGER_PATH points."""
    JsonlAppender(cwd / "logs" / "llm_cost_ledger.jsonl").append(
        {
            "ts": iso_ts(datetime.now(UTC) - timedelta(minutes=1)),
            "request_id": "r1",
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "team": "ops",
            "project": "finops",
            "purpose": "ops",
            "actual_cost_usd": usd,
        }
    )


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as running:
        yield running


def test_seed_dry_run_exits_0_and_prints_every_rule_beside_its_threshold(tmp_path: Path) -> None:
    spend(tmp_path, 1.0)
    done = run([*HARNESS, "anomaly", "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "dry run: nothing is sent" in out
    for rule in ("cost_burn ", "cost_burn_total", "rate_limit_burst", "breaker_open"):
        assert rule in out
    assert "4.00 USD/h (threshold > 2.00 USD/h, window 15 min)" in out
    assert "ANOMALY DRY RUN OK: 1 rule(s) firing, nothing sent" in out
    assert not (tmp_path / "logs" / "llm_state.sqlite3").exists(), "a dry run changes nothing"


def test_lowered_threshold_sends_one_message_to_the_local_sink(tmp_path: Path) -> None:
    spend(tmp_path, 0.01)
    done = run([*NEXUS, "anomaly", "--cost-threshold", "0.01", "--env", "local"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fired: [FIRING] LLM cost burn high (project=finops team=ops)" in done.stdout
    assert "the local webhook sink received 1 message(s)" in done.stdout
    events = [e["event"] for e in jsonl_lines(tmp_path / "logs" / "llm_audit.jsonl")]
    assert events == ["alert_fired"]


def test_second_run_sends_nothing_more(tmp_path: Path, sink: WebhookSink) -> None:
    spend(tmp_path, 1.0)
    for _ in range(3):
        done = run([*NEXUS, "anomaly"], tmp_path, SLACK_WEBHOOK_URL=sink.slack_url)
        assert done.returncode == 0, done.stdout + done.stderr
    assert len(sink.received()) == 1
    assert "nothing due to send" in done.stdout


@pytest.mark.parametrize(
    ("mode", "shown"),
    [("no_service", "404"), ("invalid_token", "403"), ("channel_is_archived", "410")],
)
def test_webhook_error_exits_3_with_the_seed_hint_and_no_url(
    tmp_path: Path, sink: WebhookSink, mode: str, shown: str
) -> None:
    spend(tmp_path, 1.0)
    sink.fail("slack", mode)
    done = run([*NEXUS, "anomaly"], tmp_path, SLACK_WEBHOOK_URL=sink.slack_url)
    assert done.returncode == 3, done.stdout + done.stderr
    assert shown in done.stdout
    assert mode in done.stdout
    assert "what to check: webhook error (401/404) or timeout" in done.stdout
    token = sink.slack_url.rsplit("/", 1)[-1]
    for secret in (sink.slack_url, token):
        assert secret not in done.stdout + done.stderr
        assert secret not in (tmp_path / "logs" / "llm_audit.jsonl").read_text()
    assert "Traceback" not in done.stderr


def test_teams_401_exits_3(tmp_path: Path, sink: WebhookSink) -> None:
    spend(tmp_path, 1.0)
    sink.fail("teams", "unauthorized")
    done = run(
        [*NEXUS, "anomaly"], tmp_path, TEAMS_WEBHOOK_URL=sink.teams_url, NOTIFY_PREFER="teams"
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "401" in done.stdout
    assert sink.teams_url.split("sig=")[-1] not in done.stdout + done.stderr


def test_webhook_timeout_exits_3(tmp_path: Path, sink: WebhookSink) -> None:
    spend(tmp_path, 1.0)
    sink.fail("slack", "hang")
    done = run(
        [*NEXUS, "anomaly"], tmp_path, SLACK_WEBHOOK_URL=sink.slack_url, NOTIFY_TIMEOUT_S="0.3"
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "timed out" in done.stdout or "timeout" in done.stdout
    assert "1 message(s) kept in the spool" in done.stdout


def test_firing_without_any_webhook_exits_2_and_keeps_the_alert(tmp_path: Path) -> None:
    spend(tmp_path, 1.0)
    done = run([*NEXUS, "anomaly"], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no webhook configured" in done.stdout
    assert "1 message(s) kept in the spool" in done.stdout
    [event] = [
        e
        for e in jsonl_lines(tmp_path / "logs" / "llm_audit.jsonl")
        if e["event"] == "notify_failed"
    ]
    assert event["alerts"] == 1


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--cost-threshold", "-1"], {}, "--cost-threshold: '-1' is invalid"),
        (["--window-min", "abc"], {}, "--window-min: 'abc' is invalid"),
        (["--window-min", "inf"], {}, "--window-min: 'inf' is invalid"),
        (["--window-min", "1e9"], {}, "--window-min: '1e9' is invalid"),
        (["--window-min", "0.5"], {}, "--window-min: '0.5' is invalid"),
        (["--cost-threshold", "inf"], {}, "--cost-threshold: 'inf' is invalid"),
        (["--breaker-open-min", "nan"], {}, "--breaker-open-min: 'nan' is invalid"),
        (["--429-threshold", "2.5"], {}, "--429-threshold: '2.5' is invalid"),
        ([], {"ANOMALY_WINDOW_MIN": "1000000000"}, "ANOMALY_WINDOW_MIN"),
        ([], {"ANOMALY_WINDOW_MIN": "0"}, "ANOMALY_WINDOW_MIN"),
        ([], {"NOTIFY_PREFER": "email"}, "NOTIFY_PREFER"),
        ([], {"SLACK_WEBHOOK_URL": "ftp://hooks.example/x"}, "SLACK_WEBHOOK_URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], env: dict[str, str], message: str
) -> None:
    done = run([*NEXUS, "anomaly", "--dry-run", *argv], tmp_path, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "ftp://hooks.example" not in done.stderr


@pytest.mark.parametrize(
    "argv", [["anomaly", "--watch"], ["cron", "run", "anomaly_watch"]], ids=["watch", "cron-run"]
)
def test_scheduled_run_records_one_job_run(
    tmp_path: Path, sink: WebhookSink, argv: list[str]
) -> None:
    spend(tmp_path, 1.0)
    done = run([*NEXUS, *argv], tmp_path, SLACK_WEBHOOK_URL=sink.slack_url)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = [
        e for e in jsonl_lines(tmp_path / "logs" / "llm_audit.jsonl") if e["event"] == "job_run"
    ]
    assert [(r["job"], r["outcome"], r["exit_code"]) for r in runs] == [("anomaly_watch", "ok", 0)]
    assert len(sink.received()) == 1


def test_scheduled_run_that_cannot_deliver_is_recorded_as_failed(
    tmp_path: Path, sink: WebhookSink
) -> None:
    spend(tmp_path, 1.0)
    sink.fail("slack", "no_service")
    done = run([*NEXUS, "cron", "run", "anomaly_watch"], tmp_path, SLACK_WEBHOOK_URL=sink.slack_url)
    assert done.returncode == 3, done.stdout + done.stderr
    [job] = [
        e for e in jsonl_lines(tmp_path / "logs" / "llm_audit.jsonl") if e["event"] == "job_run"
    ]
    assert job["outcome"] == "failed"
    assert "exit code 3" in str(job["error"])


def test_cron_run_reads_an_env_file_with_a_workflows_url(tmp_path: Path, sink: WebhookSink) -> None:
    """A Teams Workflows URL carries `&`: read by dotenv rules (not a shell), it stays whole."""
    spend(tmp_path, 1.0)
    env_file = tmp_path / "nexus.env"
    env_file.write_text(
        "# the cron job's settings\n"
        f"TEAMS_WEBHOOK_URL={sink.teams_url}\n"
        "export NOTIFY_PREFER=teams\n"
    )
    assert "&" in sink.teams_url
    done = run([*NEXUS, "cron", "run", "anomaly_watch", "--env-file", str(env_file)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    [post] = sink.received()
    assert post.channel == "teams"
    assert post.status == 202
    assert sink.teams_url.split("sig=")[-1] not in done.stdout + done.stderr


def test_cron_run_with_a_missing_env_file_is_one_line(tmp_path: Path) -> None:
    done = run([*NEXUS, "cron", "run", "anomaly_watch", "--env-file", "nope.env"], tmp_path)
    assert done.returncode == 2
    assert "--env-file nope.env: no such file" in done.stderr


def test_dry_run_warns_about_a_retired_teams_url_without_contacting_it(tmp_path: Path) -> None:
    done = run(
        [*NEXUS, "anomaly", "--dry-run"],
        tmp_path,
        TEAMS_WEBHOOK_URL="https://contoso.webhook.office.com/webhookb2/abc",
        NOTIFY_PREFER="teams",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: TEAMS_WEBHOOK_URL is a retired Office 365 connector URL" in done.stdout
    assert "webhookb2/abc" not in done.stdout


def test_dry_run_on_local_names_the_sink_channels(tmp_path: Path) -> None:
    done = run([*NEXUS, "anomaly", "--dry-run", "--env", "local"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "would notify: slack (fallback: teams)" in done.stdout


def test_spaced_json_lines_are_read(tmp_path: Path) -> None:
    """Another writer's `json.dumps` spacing still counts (here: 429s in the audit log)."""
    audit = tmp_path / "logs" / "llm_audit.jsonl"
    audit.parent.mkdir(parents=True)
    ts = iso_ts(datetime.now(UTC) - timedelta(minutes=1))
    line = f'{{"ts": "{ts}", "event": "llm_error", "provider": "openai", "status": 429}}\n'
    audit.write_text(line * 3)
    done = run([*NEXUS, "anomaly", "--dry-run", "--429-threshold", "3"], tmp_path)
    assert "[FIRING] rate_limit_burst [provider=openai]: 3 429 responses" in done.stdout
    assert "damaged" not in done.stdout
