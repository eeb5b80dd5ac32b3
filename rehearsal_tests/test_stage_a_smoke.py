"""Stage A — the 30-minute smoke (minimum pass): checks 1-3."""

from __future__ import annotations

import pytest

from nexus_llm import Client
from pytest_nexus_rehearsal import rehearsal
from pytest_nexus_rehearsal.checks.report import run_report_check
from pytest_nexus_rehearsal.checks.smoke import run_smoke
from pytest_nexus_rehearsal.environments import NexusEnvironment, usable_providers
from pytest_nexus_rehearsal.fixtures import ScorecardRow


@rehearsal.smoke
@rehearsal.check(1)
def test_basic_call_writes_audit_and_ledger(
    llm_client: Client, nexus_env: NexusEnvironment, scorecard_row: ScorecardRow
) -> None:
    """A call to each configured provider leaves an llm_success line and a priced ledger line."""
    providers = usable_providers(nexus_env.settings)
    results = {
        p: run_smoke(llm_client, prompt="hello", purpose="ops", provider=p) for p in providers
    }
    failed = [p for p, r in results.items() if not r.ok]
    scorecard_row.record(
        measured=f"{len(providers) - len(failed)} of {len(providers)} provider(s) OK",
        threshold=next(iter(results.values())).threshold if results else "",
        evidence="; ".join(
            f"{p}: {'OK' if r.ok else 'NG'} — {r.evidence}" for p, r in results.items()
        )
        or "no provider configured",
        hint="; ".join(f"{p}: {results[p].hint}" for p in failed),
    )
    assert providers, "no provider is configured for this environment"
    assert not failed, "\n".join(
        results[p].render(header=f"check 1, {p}, on {nexus_env.describe()}") for p in failed
    )


@rehearsal.smoke
@rehearsal.check(2)
def test_finops_report_shows_total_cost(
    llm_client: Client, nexus_env: NexusEnvironment, scorecard_row: ScorecardRow
) -> None:
    """The FinOps report for a date range is written and shows the total cost."""
    result = run_report_check(llm_client)
    scorecard_row.record(
        measured=result.measured,
        threshold=result.threshold,
        evidence=result.evidence,
        hint=result.hint,
    )
    assert result.ok, result.render(header=f"check 2 on {nexus_env.describe()}")


@rehearsal.smoke
@rehearsal.check(3)
def test_alert_wiring_dry_run_then_real_send() -> None:
    """The anomaly dry run exits 0, and a lowered threshold sends exactly one alert."""
    pytest.skip("not implemented yet: anomaly rules and Slack/Teams alerts come in a later release")
