"""The pytest plugin, driven by `pytester` as a user's pytest session would drive it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import clean_environ

CHECKS = """
import pytest
from pytest_nexus_rehearsal import rehearsal

@rehearsal.smoke
@rehearsal.check(1)
def test_row_one_passes(scorecard_row):
    scorecard_row.record(measured="1 line", threshold=">= 1", evidence="found llm_success")

@rehearsal.smoke
@rehearsal.check(2)
def test_row_two_fails(scorecard_row):
    scorecard_row.record(measured="0 lines", evidence="no report", hint="look at the ledger path")
    assert False, "report missing"

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

@rehearsal.smoke
@rehearsal.check(3)
def test_row_three_errors(broken):
    pass

@rehearsal.ops
@rehearsal.check(4)
def test_row_four_passes_without_evidence():
    pass

@rehearsal.ops
@rehearsal.check(5)
def test_row_five_not_implemented():
    pytest.skip("not implemented yet")

@rehearsal.day1
@rehearsal.check(7)
@rehearsal.manual("Look at the cron log for 24 hours")
def test_row_seven_is_manual():
    raise AssertionError("a manual check must never run")

def test_unrelated():
    pass
"""


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run pytester sessions without any provider or Nexus setting of the outer process."""
    for key in list(__import__("os").environ):
        if key not in clean_environ():
            monkeypatch.delenv(key)


def scorecard_json(path: Path) -> dict[str, object]:
    return json.loads(path.with_suffix(".json").read_text())  # type: ignore[no-any-return]


def statuses(card: dict[str, object]) -> dict[str, str]:
    rows = card["rows"]
    assert isinstance(rows, list)
    return {row["row"]: row["status"] for row in rows}


@pytest.mark.usefixtures("isolated")
class TestMarkers:
    def test_markers_are_registered(self, pytester: pytest.Pytester) -> None:
        """`pytest --markers` lists smoke, ops, day1, manual and nexus_check."""
        result = pytester.runpytest("--markers")
        text = result.stdout.str()
        for name in (
            "@pytest.mark.smoke",
            "@pytest.mark.ops",
            "@pytest.mark.day1",
            "@pytest.mark.manual",
            "@pytest.mark.nexus_check",
        ):
            assert name in text

    def test_strict_markers_clean_and_selection_by_stage(self, pytester: pytest.Pytester) -> None:
        """Under --strict-markers, `-m smoke` selects exactly the stage A checks."""
        pytester.makepyfile(test_checks=CHECKS)
        result = pytester.runpytest("--strict-markers", "-m", "smoke")
        result.assert_outcomes(passed=1, failed=1, errors=1)
        assert "deselected" in result.stdout.str()

    def test_unknown_row_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A check tied to a row the checklist lacks stops the session with a clear line."""
        pytester.makepyfile(
            "from pytest_nexus_rehearsal import rehearsal\n"
            "@rehearsal.check(42)\ndef test_x():\n    pass\n"
        )
        result = pytester.runpytest()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*nexus_check('42') is not a scorecard row*"])

    def test_manual_needs_instructions(self) -> None:
        """rehearsal.manual() without instructions is refused at import time."""
        from pytest_nexus_rehearsal import rehearsal

        with pytest.raises(ValueError, match="instructions"):
            rehearsal.manual("  ")


@pytest.mark.usefixtures("isolated")
class TestScorecard:
    def test_every_status_lands_in_its_row(self, pytester: pytest.Pytester) -> None:
        """PASS, FAIL, ERROR, INCONCLUSIVE, NOT RUN and MANUAL each reach the right row."""
        pytester.makepyfile(test_checks=CHECKS)
        out = pytester.path / "out" / "card.md"
        result = pytester.runpytest("--scorecard", str(out))
        result.assert_outcomes(passed=3, failed=1, errors=1, skipped=2)
        card = scorecard_json(out)
        assert statuses(card) == {
            "1": "PASS",
            "2": "FAIL",
            "3": "ERROR",
            "4": "INCONCLUSIVE",
            "5": "NOT RUN",
            "6": "NOT RUN",
            "7": "MANUAL",
            "8": "NOT RUN",
            "autoscore": "NOT RUN",
        }
        rows = {row["row"]: row for row in card["rows"]}  # type: ignore[union-attr]
        assert rows["2"]["what_to_check"] == "look at the ledger path"
        assert "report missing" in rows["2"]["detail"]
        assert "fixture exploded" in rows["3"]["detail"]
        assert rows["7"]["detail"] == "Look at the cron log for 24 hours"
        assert rows["1"]["evidence"] == "found llm_success"
        assert card["verdict"].startswith("FAIL")  # type: ignore[union-attr]
        markdown = out.read_text()
        assert "EMULATOR RUN" in markdown
        assert "| 2 | Report generation | **FAIL** |" in markdown
        assert "look at the ledger path" in markdown
        assert "scorecard written to" in result.stdout.str()

    def test_no_option_no_file(self, pytester: pytest.Pytester) -> None:
        """Without --scorecard nothing is written, though the summary still shows the rows."""
        pytester.makepyfile(test_checks=CHECKS)
        pytester.runpytest()
        assert not list(pytester.path.rglob("*.json"))

    def test_no_rehearsal_tests_is_no_data(self, pytester: pytest.Pytester) -> None:
        """A scorecard from a session without checks says NO DATA, never a pass."""
        pytester.makepyfile("def test_plain():\n    pass\n")
        out = pytester.path / "card.md"
        pytester.runpytest("--scorecard", str(out))
        card = scorecard_json(out)
        assert set(statuses(card).values()) == {"NOT RUN"}
        assert str(card["verdict"]).startswith("NO DATA")

    def test_user_template_replaces_the_form(self, pytester: pytest.Pytester) -> None:
        """--scorecard-template renders the user's own jinja2 form."""
        pytester.makepyfile(test_checks=CHECKS)
        template = pytester.path / "form.md"
        template.write_text("{% for r in rows %}{{ r.item.row }}={{ r.status }};{% endfor %}")
        out = pytester.path / "card.md"
        pytester.runpytest("--scorecard", str(out), "--scorecard-template", str(template))
        assert out.read_text().startswith("1=PASS;2=FAIL;3=ERROR;4=INCONCLUSIVE;")

    def test_missing_template_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A template path that does not exist stops the session before any test runs."""
        pytester.makepyfile(test_checks=CHECKS)
        result = pytester.runpytest("--scorecard", "c.md", "--scorecard-template", "nope.md")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--scorecard-template=nope.md: no such file*"])

    def test_secrets_are_masked(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A key that leaks into a failure message is masked on the scorecard."""
        monkeypatch.setenv("GEMINI_API_KEY", "sk-very-secret-value")
        pytester.makepyfile(
            "import os\nfrom pytest_nexus_rehearsal import rehearsal\n"
            "@rehearsal.check(1)\ndef test_leak(scorecard_row):\n"
            "    scorecard_row.record(measured='x', evidence=os.environ['GEMINI_API_KEY'])\n"
            "    assert False, os.environ['GEMINI_API_KEY']\n"
        )
        out = pytester.path / "card.md"
        pytester.runpytest("--scorecard", str(out), "--nexus-env", "staging")
        text = out.read_text() + out.with_suffix(".json").read_text()
        assert "sk-very-secret-value" not in text
        assert "***" in text

    def test_crashed_worker_is_an_error_not_no_data(self, pytester: pytest.Pytester) -> None:
        """A check whose worker process dies shows as ERROR on its row, never as NO DATA."""
        pytester.makepyfile(
            "import os\nfrom pytest_nexus_rehearsal import rehearsal\n"
            "@rehearsal.check(1)\ndef test_dies():\n    os._exit(1)\n"
        )
        out = pytester.path / "card.md"
        pytester.runpytest_subprocess("-n", "1", "--scorecard", str(out))
        card = scorecard_json(out)
        assert statuses(card)["1"] == "ERROR"
        assert not str(card["verdict"]).startswith("NO DATA")

    def test_xdist_controller_writes_the_same_rows(self, pytester: pytest.Pytester) -> None:
        """Under -n 2 the controller gathers every worker's rows and writes one scorecard."""
        pytester.makepyfile(test_checks=CHECKS)
        out = pytester.path / "card.md"
        result = pytester.runpytest_subprocess("-n", "2", "--scorecard", str(out))
        result.assert_outcomes(passed=3, failed=1, errors=1, skipped=2)
        card = scorecard_json(out)
        assert statuses(card)["1"] == "PASS"
        assert statuses(card)["2"] == "FAIL"
        assert statuses(card)["3"] == "ERROR"
        assert statuses(card)["4"] == "INCONCLUSIVE"
        assert statuses(card)["7"] == "MANUAL"
        rows = {row["row"]: row for row in card["rows"]}  # type: ignore[union-attr]
        assert rows["1"]["evidence"] == "found llm_success"


@pytest.mark.usefixtures("isolated")
class TestEnvironmentOption:
    def test_bad_env_name_names_its_source(self, pytester: pytest.Pytester) -> None:
        """An invalid --nexus-env stops the session with one line naming the option."""
        result = pytester.runpytest("--nexus-env", "no such env!")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--nexus-env='no such env!' is invalid*"])

    def test_env_variable_is_a_source_too(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """In a rehearsal run NEXUS_ENV selects the environment and is named in errors."""
        monkeypatch.setenv("NEXUS_ENV", "bad env")
        result = pytester.runpytest("--scorecard", "card.md")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*NEXUS_ENV='bad env' is invalid*"])

    def test_env_variable_alone_leaves_other_sessions_alone(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An application's NEXUS_ENV and settings never affect its own, unrelated tests."""
        monkeypatch.setenv("NEXUS_ENV", "prod")
        monkeypatch.setenv("LLM_DEFAULT_TEAM", "not a valid team")
        pytester.makepyfile("def test_plain():\n    pass\n")
        result = pytester.runpytest()
        result.assert_outcomes(passed=1)
        assert "nexus rehearsal" not in result.stdout.str()

    def test_bad_local_setting_is_one_line_without_secrets(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bad setting stops a local rehearsal in one line and never prints the environment."""
        monkeypatch.setenv("GEMINI_API_KEY", "AIza-leak-me-not")
        monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example.invalid/leak-me-not")
        monkeypatch.setenv("LLM_DEFAULT_TEAM", "a b")
        result = pytester.runpytest_subprocess("--pyargs", "rehearsal_tests", "--nexus-env=local")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        output = result.stdout.str() + result.stderr.str()
        assert "LLM_DEFAULT_TEAM='a b' is invalid" in output
        assert "leak-me-not" not in output

    def test_staging_without_a_key_stops_at_start(self, pytester: pytest.Pytester) -> None:
        """A real environment with no provider key is a usage error before any test runs."""
        result = pytester.runpytest("--nexus-env=staging")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*'staging'*no LLM provider configured*GEMINI_API_KEY*"])

    def test_unknown_profile_name_is_refused(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With profiles defined, a misspelt environment name is refused, naming the real ones."""
        monkeypatch.setenv("GEMINI_API_KEY", "k-123456")
        pytester.makefile(".toml", nexus='[environments.staging]\nLLM_DEFAULT_TEAM = "ops"\n')
        result = pytester.runpytest("--nexus-env=stagign")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*stagign*one of the profiles defined here: staging*"])

    def test_unwritable_scorecard_stops_at_start(self, pytester: pytest.Pytester) -> None:
        """A scorecard path that is a directory is refused before the rehearsal runs."""
        result = pytester.runpytest("--scorecard", str(pytester.path))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*is a directory*"])

    def test_header_says_emulator_loudly(self, pytester: pytest.Pytester) -> None:
        """With --nexus-env=local the session header says the emulator answers."""
        pytester.makepyfile("def test_plain():\n    pass\n")
        result = pytester.runpytest("--nexus-env=local")
        result.stdout.fnmatch_lines(["nexus rehearsal: env=local*EMULATOR*"])

    def test_profile_secrets_are_refused(self, pytester: pytest.Pytester) -> None:
        """A key written into a profile is refused, without echoing it."""
        pytester.makefile(".toml", nexus='[environments.staging]\nGEMINI_API_KEY = "abc12345"\n')
        result = pytester.runpytest("--nexus-env=staging")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "no secrets in profiles" in result.stderr.str()
        assert "abc12345" not in result.stderr.str() + result.stdout.str()

    def test_profile_settings_are_validated(self, pytester: pytest.Pytester) -> None:
        """A bad value in a profile is reported with the variable's name."""
        pytester.makefile(".toml", nexus="[environments.staging]\nANOMALY_WINDOW_MIN = 0\n")
        result = pytester.runpytest("--nexus-env=staging")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*ANOMALY_WINDOW_MIN='0' is invalid*"])

    def test_plugin_costs_nothing_when_unused(self, pytester: pytest.Pytester) -> None:
        """A plain session never imports the client or starts the emulator."""
        pytester.makepyfile(
            "import sys, threading\n"
            "def test_untouched():\n"
            "    assert 'nexus_llm.emulator' not in sys.modules\n"
            "    assert 'nexus_llm.client' not in sys.modules\n"
            "    assert not [t for t in threading.enumerate() if 'emulator' in t.name.lower()]\n"
        )
        result = pytester.runpytest_subprocess()
        result.assert_outcomes(passed=1)


@pytest.mark.usefixtures("isolated")
class TestShippedChecklist:
    """The real `rehearsal_tests` package, as a user runs it."""

    def test_installed_package_implemented_rows_pass(self, pytester: pytest.Pytester) -> None:
        """`pytest --pyargs rehearsal_tests` on local: every row PASS, and the verdict."""
        out = pytester.path / "scorecard.md"
        result = pytester.runpytest_subprocess(
            "--pyargs", "rehearsal_tests", "--scorecard", str(out)
        )
        result.assert_outcomes(passed=9)
        card = scorecard_json(out)
        assert statuses(card) == {
            "1": "PASS",
            "2": "PASS",
            "3": "PASS",
            "4": "PASS",
            "5": "PASS",
            "6": "PASS",
            "7": "PASS",
            "8": "PASS",
            "autoscore": "PASS",
        }
        assert card["verdict"] == "PASS — release pass"
        autoscore = card["rows"][8]  # type: ignore[index]
        assert "3 of 3 signals" in autoscore["measured"]
        row3 = card["rows"][2]  # type: ignore[index]
        assert "the sink received 1 message(s)" in row3["evidence"]
        row7 = card["rows"][6]  # type: ignore[index]
        assert "anomaly_watch 24/24, monthly_report 1/1" in row7["measured"]
        row8 = card["rows"][7]  # type: ignore[index]
        assert "2 message(s)" in row8["measured"]
        row5 = card["rows"][4]  # type: ignore[index]
        assert "nexus_llm_cost_usd_total{team='ops', project='finops'" in row5["evidence"]
        row4 = card["rows"][3]  # type: ignore[index]
        assert "1 provider call(s), 4 dedupe hit(s) of 5" in row4["measured"]
        assert "emulator received 1 request(s)" in row4["evidence"]
        row6 = card["rows"][5]  # type: ignore[index]
        assert "0/55 failed" in row6["measured"]
        assert "concurrency 5" in row6["measured"]
        row1 = card["rows"][0]  # type: ignore[index]
        assert "llm_success" in row1["evidence"]
        for provider in ("gemini", "openai", "anthropic", "glm"):
            assert f"{provider}: OK" in row1["evidence"]  # every emulated provider exercised
        assert card["header"]["emulator"] == "yes"  # type: ignore[index]

    def test_day1_alone_with_a_relative_scorecard_path(self, pytester: pytest.Pytester) -> None:
        """Stage C on its own (no earlier call, so no ledger yet) with the Makefile's relative
        `--scorecard scorecard.md`: rows 7, 8 and the autoscore (which makes its own traffic
        on local) PASS."""
        result = pytester.runpytest_subprocess(
            "--pyargs", "rehearsal_tests", "-m", "day1", "--scorecard", "scorecard.md"
        )
        result.assert_outcomes(passed=3)
        card = scorecard_json(pytester.path / "scorecard.md")
        assert statuses(card)["7"] == "PASS"
        assert statuses(card)["8"] == "PASS"
        assert statuses(card)["autoscore"] == "PASS"

    def test_smoke_selection_under_xdist(self, pytester: pytest.Pytester) -> None:
        """`-m smoke -n 2` runs stage A only, on two workers, and still passes row 1."""
        out = pytester.path / "out.md"
        result = pytester.runpytest_subprocess(
            "--pyargs",
            "rehearsal_tests",
            "-m",
            "smoke",
            "-n",
            "2",
            "--nexus-env=local",
            "--scorecard",
            str(out),
        )
        result.assert_outcomes(passed=3)
        assert statuses(scorecard_json(out))["1"] == "PASS"
        assert statuses(scorecard_json(out))["3"] == "PASS"

    def test_ops_stage_under_xdist(self, pytester: pytest.Pytester) -> None:
        """`-m ops -n 2`: checks 4-6 on two workers; the load's row reaches the controller's
        scorecard as PASS, and the operations pass is PASS."""
        out = pytester.path / "out.md"
        result = pytester.runpytest_subprocess(
            "--pyargs", "rehearsal_tests", "-m", "ops", "-n", "2", "--scorecard", str(out)
        )
        result.assert_outcomes(passed=3)
        card = scorecard_json(out)
        assert {row: statuses(card)[row] for row in ("4", "5", "6")} == dict.fromkeys(
            ("4", "5", "6"), "PASS"
        )
        assert "operations pass: PASS" in out.read_text()

    def test_the_load_needs_consent_in_a_real_environment(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Outside `local`, check 6 sends nothing without --nexus-load (its row is NOT RUN and
        says how to allow it); with the flag it runs against the configured provider."""
        from nexus_llm.emulator import Emulator

        with Emulator() as emulator:
            monkeypatch.setenv("GEMINI_API_KEY", emulator.gemini_key)
            monkeypatch.setenv("GEMINI_BASE_URL", emulator.base_url)
            monkeypatch.setenv("LLM_AUDIT_LOG_PATH", str(pytester.path / "logs" / "audit.jsonl"))
            monkeypatch.setenv("LLM_COST_LEDGER_PATH", str(pytester.path / "logs" / "led.jsonl"))
            out = pytester.path / "out.md"
            args = ["--pyargs", "rehearsal_tests", "-k", "load", "--nexus-env=staging"]
            refused = pytester.runpytest_subprocess(*args, "--scorecard", str(out))
            refused.assert_outcomes(skipped=1)
            row6 = scorecard_json(out)["rows"][5]  # type: ignore[index]
            assert row6["status"] == "NOT RUN"
            assert "--nexus-load" in row6["detail"]
            assert emulator.request_count("gemini") == 0
            allowed = pytester.runpytest_subprocess(*args, "--nexus-load", "--scorecard", str(out))
            allowed.assert_outcomes(passed=1)
            assert statuses(scorecard_json(out))["6"] == "PASS"
            assert emulator.request_count("gemini") == 55  # 5 sequential + 50 under load

    def test_row_one_fails_with_the_seed_hint_when_the_key_is_rejected(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Against a provider that rejects the key, row 1 is FAIL and says what to check."""
        from nexus_llm.emulator import Emulator

        with Emulator() as emulator:
            monkeypatch.setenv("GEMINI_API_KEY", "rejected-key-123")
            monkeypatch.setenv("GEMINI_BASE_URL", emulator.base_url)
            monkeypatch.setenv("LLM_AUDIT_LOG_PATH", str(pytester.path / "logs" / "audit.jsonl"))
            monkeypatch.setenv("LLM_COST_LEDGER_PATH", str(pytester.path / "logs" / "led.jsonl"))
            out = pytester.path / "out.md"
            result = pytester.runpytest_subprocess(
                "--pyargs",
                "rehearsal_tests",
                "-m",
                "smoke",
                "--nexus-env=staging",
                "--scorecard",
                str(out),
            )
        result.assert_outcomes(failed=3)
        card = scorecard_json(out)
        row1 = card["rows"][0]  # type: ignore[index]
        assert row1["status"] == "FAIL"
        assert "GEMINI_API_KEY" in row1["what_to_check"]
        assert "rejected-key-123" not in out.read_text()
        assert card["header"]["emulator"] == "no"  # type: ignore[index]
