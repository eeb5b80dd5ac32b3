"""Stage C — the 1-day rehearsal (release pass): checks 7-8 and the automatic scoring."""

from __future__ import annotations

import pytest

from pytest_nexus_rehearsal import rehearsal


@rehearsal.day1
@rehearsal.check(7)
def test_cron_jobs_ran_without_a_miss() -> None:
    """The anomaly watch (*/5) and the monthly report (0 9 1 * *) ran at every expected tick."""
    pytest.skip("not implemented yet: scheduled jobs come in a later release")


@rehearsal.day1
@rehearsal.check(8)
def test_fault_then_recovery_round_trip() -> None:
    """A bad key opens the breaker and alerts once; after recovery the breaker closes."""
    pytest.skip("not implemented yet: the breaker and alerts come in a later release")


@rehearsal.day1
@rehearsal.check("autoscore")
def test_recent_logs_show_every_signal() -> None:
    """The last hours of logs hold llm_success, ledger lines, dedupe hits and tagging."""
    pytest.skip("not implemented yet: autoscore comes in a later release")
