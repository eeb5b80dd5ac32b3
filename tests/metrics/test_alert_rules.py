"""The shipped Prometheus alerting rules (templates/prometheus/nexus_alerts.yml): they pass
`promtool check rules` and their unit tests (`promtool test rules`), the unit tests can fail,
and the thresholds are the anomaly rules' defaults from `Settings`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nexus_llm import Settings
from tests.support import require_executable

RULES_DIR = Path(__file__).resolve().parents[2] / "templates" / "prometheus"
RULES = RULES_DIR / "nexus_alerts.yml"
RULE_TESTS = RULES_DIR / "nexus_alerts_test.yml"


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = require_executable("promtool", needed_for="checking the shipped alerting rules")
    return subprocess.run(
        [exe, *map(str, args)], capture_output=True, text=True, timeout=100, cwd=cwd, check=False
    )


def rules() -> dict[str, list[str]]:
    """Each alert's name → the text of its rules (a name may have several, one per job)."""
    text = RULES.read_text("utf-8")
    found: dict[str, list[str]] = {}
    pattern = r"- alert: (\w+)\n(.*?)(?=\n\s*(?:#|- alert:|- name:)|\Z)"
    for match in re.finditer(pattern, text, re.S):
        found.setdefault(match[1], []).append(match[2])
    return found


def expr(rule: str) -> str:
    match = re.search(r"expr: (.*?)\n\s*(?:for|labels):", rule, re.S)
    assert match, rule
    return match[1]


def number(value: float) -> str:
    return f"{value:g}"


def test_shipped_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_rule_unit_tests_pass(tmp_path: Path) -> None:
    """Run from elsewhere: the test file finds the rules next to itself."""
    done = promtool("test", "rules", RULE_TESTS, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """The check can fail: a copy of the unit tests that expects 31 429s where there are 30."""
    shutil.copy(RULES, tmp_path / RULES.name)
    good = 'summary: "30 rate-limit (429) answers from gemini in 15m"'
    text = RULE_TESTS.read_text("utf-8")
    assert good in text
    broken = tmp_path / RULE_TESTS.name
    broken.write_text(text.replace(good, good.replace("30", "31")), "utf-8")
    done = promtool("test", "rules", broken, cwd=tmp_path)
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr
    assert "31 rate-limit (429) answers from gemini" in done.stdout + done.stderr


def test_every_anomaly_rule_is_shipped() -> None:
    assert set(rules()) == {
        "NexusCostBurnHigh",
        "NexusCostBurnHighTotal",
        "Nexus429Burst",
        "NexusBreakerOpen",
        "NexusScheduledJobStale",
    }


def test_thresholds_equal_the_settings_defaults() -> None:
    defaults = Settings()
    found = rules()
    window = f"[{defaults.anomaly_window_min}m]"
    cost = number(defaults.anomaly_cost_usd_rate_threshold)
    burst = number(defaults.anomaly_429_burst_threshold)
    breaker = number(defaults.anomaly_breaker_open_min)

    for name in ("NexusCostBurnHigh", "NexusCostBurnHighTotal", "Nexus429Burst"):
        (rule,) = found[name]
        ranges = re.findall(r"\[\w+\]", expr(rule))
        assert ranges, name
        assert set(ranges) == {window}, (name, ranges)
        assert f"last {defaults.anomaly_window_min}m" in rule
        assert f"ANOMALY_WINDOW_MIN={defaults.anomaly_window_min}" in rule

    for name in ("NexusCostBurnHigh", "NexusCostBurnHighTotal"):
        (rule,) = found[name]
        limits = re.findall(r"\* 3600 > ([\d.]+)", expr(rule))
        assert limits, name
        assert set(limits) == {cost}, (name, limits)
        assert f"the threshold is {cost} USD per hour" in rule

    (rule,) = found["Nexus429Burst"]
    assert re.findall(r">= ([\d.]+)", expr(rule)) == [burst]
    assert f"the threshold is {burst} (ANOMALY_429_BURST_THRESHOLD" in rule

    (rule,) = found["NexusBreakerOpen"]
    assert re.findall(r"\n\s*for: (\w+)", rule) == [f"{breaker}m"]
    assert f"the threshold is {breaker} minutes (ANOMALY_BREAKER_OPEN_MIN)" in rule


@pytest.mark.parametrize(
    ("job", "stale_after_s", "schedule"),
    [("anomaly_watch", 15 * 60, "*/5 * * * *"), ("monthly_report", 32 * 86400, "0 9 1 * *")],
)
def test_scheduled_job_staleness(job: str, stale_after_s: int, schedule: str) -> None:
    (rule,) = [r for r in rules()["NexusScheduledJobStale"] if f'job="{job}"' in r]
    assert expr(rule).rstrip().endswith(f"> {stale_after_s}")
    assert f'schedule: "{schedule}"' in rule


def test_every_rule_names_its_env_var_unit_and_runbook() -> None:
    text = RULES.read_text("utf-8")
    for var in (
        "ANOMALY_WINDOW_MIN",
        "ANOMALY_COST_USD_RATE_THRESHOLD",
        "ANOMALY_429_BURST_THRESHOLD",
        "ANOMALY_BREAKER_OPEN_MIN",
    ):
        assert re.search(rf"^\s*# .*{var}", text, re.M), var
    for name, bodies in rules().items():
        for rule in bodies:
            assert "severity:" in rule, name
            for key in ("summary:", "description:", "runbook:"):
                assert key in rule, (name, key)
            assert "http" not in rule, name
