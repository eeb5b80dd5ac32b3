"""Controller side: gathers rehearsal reports and writes the scorecard at the end of the session.

Under xdist the workers' reports (with their user_properties) arrive here through
`pytest_runtest_logreport`; only the controller writes the scorecard.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .fixtures import EVIDENCE_KEY
from .options import resolve_env_name, scorecard_path, template_path
from .scorecard import (
    ERROR,
    FAIL,
    INCONCLUSIVE,
    MANUAL,
    NOT_RUN,
    PASS,
    TestOutcome,
    build_scorecard,
    write_scorecard,
)

ROW_KEY = "nexus_check"
MANUAL_PREFIX = "MANUAL: "
_SECRET_SUFFIXES = ("_API_KEY", "_WEBHOOK_URL", "REDIS_URL")


class ScorecardCollector:
    """A plugin object registered per session by `plugin.pytest_configure`."""

    def __init__(self, config: pytest.Config, providers: str) -> None:
        self.config = config
        self.providers = providers
        self.outcomes: list[TestOutcome] = []
        self.written: Path | None = None
        self.write_error: str | None = None
        # nodeid → row, learnt from the setup report: a worker that dies mid-test sends a
        # report without user_properties, and this is how its row still gets the ERROR.
        self._rows_by_nodeid: dict[str, str] = {}

    @property
    def is_controller(self) -> bool:
        return not hasattr(self.config, "workerinput")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = dict(report.user_properties).get(ROW_KEY)
        if row is None:
            row = self._rows_by_nodeid.get(report.nodeid)
            if row is None or not report.failed:
                return
            self.outcomes.append(crash_outcome(report, row))
            return
        self._rows_by_nodeid[report.nodeid] = str(row)
        outcome = outcome_of(report, str(row))
        if outcome is not None:
            self.outcomes.append(outcome)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = scorecard_path(self.config)
        if path is None or not self.is_controller:
            return
        card = build_scorecard([_redacted(o) for o in self.outcomes], self._header())
        try:
            write_scorecard(card, path, template_path(self.config))
        except OSError as exc:
            # Said in the summary; the rows are still printed there.
            self.write_error = f"--scorecard={path}: cannot write ({exc.strerror or exc})"
            return
        self.written = path

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.is_controller or not (self.outcomes or self.written or self.write_error):
            return
        card = build_scorecard(self.outcomes, {})
        terminalreporter.section("nexus rehearsal scorecard")
        for row in card.rows:
            terminalreporter.write_line(f"  {row.item.row:>9}  {row.status:<12}  {row.item.title}")
        for stage in card.stages:
            terminalreporter.write_line(f"  {stage.name}: {stage.verdict} ({stage.summary})")
        terminalreporter.write_line(f"  verdict: {card.verdict}")
        if self.written is not None:
            twin = self.written.with_suffix(".json").name
            terminalreporter.write_line(f"  scorecard written to {self.written} (+ {twin})")
        if self.write_error is not None:
            terminalreporter.write_line(f"  {self.write_error}", red=True)

    def _header(self) -> dict[str, str]:
        import nexus_llm

        config = self.config
        name, source = resolve_env_name(config)
        emulator = name == "local"
        kind = "EMULATOR, no real provider called" if emulator else "real providers"
        args = " ".join(shlex.quote(a) for a in config.invocation_params.args)
        topology = (
            config.getoption("nexus_topology") or os.environ.get("NEXUS_TOPOLOGY") or "single"
        )
        return {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "env": name,
            "env_description": f"{name} ({source}) — {kind}",
            "emulator": "yes" if emulator else "no",
            "topology": topology,
            "providers": self.providers,
            "versions": (
                f"pytest-nexus-rehearsal {nexus_llm.__version__}, "
                f"Python {platform.python_version()}, pytest {pytest.__version__}"
            ),
            "git_commit": git_commit(config.rootpath),
            "command": redact(f"pytest {args}".strip()),
        }


def outcome_of(report: pytest.TestReport, row: str) -> TestOutcome | None:
    """What one report says about its row; None for phases that say nothing."""
    evidence: dict[str, str] = {}
    for key, value in report.user_properties:
        if key == EVIDENCE_KEY and isinstance(value, dict):
            evidence = {str(k): str(v) for k, v in value.items()}
    recorded = bool(evidence.get("evidence"))

    def made(status: str, detail: str = "") -> TestOutcome:
        return TestOutcome(
            nodeid=report.nodeid,
            row=row,
            status=status,
            measured=evidence.get("measured", ""),
            threshold=evidence.get("threshold", ""),
            evidence=evidence.get("evidence", ""),
            hint=evidence.get("hint", ""),
            detail=detail,
        )

    if report.when == "setup":
        if report.failed:
            return made(ERROR, _failure_line(report))
        if report.skipped:
            reason = _skip_reason(report)
            if reason.startswith(MANUAL_PREFIX):
                return made(MANUAL, reason.removeprefix(MANUAL_PREFIX))
            return made(NOT_RUN, reason)
        return None
    if report.when == "call":
        if report.passed:
            return made(PASS) if recorded else made(INCONCLUSIVE, "passed without evidence")
        if report.skipped:
            return made(NOT_RUN, _skip_reason(report))
        return made(FAIL, _failure_line(report))
    return made(ERROR, _failure_line(report)) if report.failed else None


def crash_outcome(report: pytest.TestReport, row: str) -> TestOutcome:
    """A failure reported without the test's properties: its worker died mid-test."""
    return TestOutcome(
        nodeid=report.nodeid,
        row=row,
        status=ERROR,
        detail=f"the test process died mid-test: {_failure_line(report)}",
        hint="the check crashed its process (os._exit, a timeout, a signal): see the pytest log",
    )


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "skipped")


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if not isinstance(message, str) or not message.strip():
        lines = report.longreprtext.strip().splitlines()
        message = lines[-1] if lines else "failed"
    return message.strip().splitlines()[0][:300]


def git_commit(root: Path) -> str:
    """The short commit of the checkout under test, or 'unavailable'."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0 or not head.stdout.strip():
            return "unavailable"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def redact(text: str) -> str:
    """Mask any secret of the process environment that found its way into text."""
    for key, value in os.environ.items():
        if key.endswith(_SECRET_SUFFIXES) and len(value) >= 6:
            text = text.replace(value, "***")
    return text


def _redacted(outcome: TestOutcome) -> TestOutcome:
    outcome.measured = redact(outcome.measured)
    outcome.threshold = redact(outcome.threshold)
    outcome.evidence = redact(outcome.evidence)
    outcome.hint = redact(outcome.hint)
    outcome.detail = redact(outcome.detail)
    return outcome
