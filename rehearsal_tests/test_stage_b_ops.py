"""Stage B — the 2-hour rehearsal (operations pass): checks 4-6."""

from __future__ import annotations

import pytest

from nexus_llm import Client
from pytest_nexus_rehearsal import rehearsal
from pytest_nexus_rehearsal.checks.dedupe import run_dedupe
from pytest_nexus_rehearsal.checks.load import run_load
from pytest_nexus_rehearsal.checks.tagging import run_tagging
from pytest_nexus_rehearsal.environments import LOCAL, NexusEnvironment
from pytest_nexus_rehearsal.fixtures import ScorecardRow


@rehearsal.ops
@rehearsal.check(4)
def test_dedupe_sends_one_call_for_identical_prompts(
    llm_client: Client, nexus_env: NexusEnvironment, scorecard_row: ScorecardRow
) -> None:
    """Five identical calls at once reach the provider once; the rest are llm_dedupe_hit."""
    emulator = nexus_env.emulator
    result = run_dedupe(
        llm_client,
        prompt="same prompt",
        n=5,
        purpose="ops",
        count_requests=(lambda: emulator.request_count("gemini")) if emulator else None,
    )
    scorecard_row.record(
        measured=result.measured,
        threshold=result.threshold,
        evidence=result.evidence,
        hint=result.hint,
    )
    assert result.ok, result.render(header=f"check 4 on {nexus_env.describe()}")


@rehearsal.ops
@rehearsal.check(5)
def test_team_and_project_tags_are_separated(
    llm_client: Client, nexus_env: NexusEnvironment, scorecard_row: ScorecardRow
) -> None:
    """The ledger and the cost metric carry team=ops, project=finops, apart from the defaults."""
    result = run_tagging(llm_client, prompt="tag test", team="ops", project="finops", purpose="ops")
    scorecard_row.record(
        measured=result.measured,
        threshold=result.threshold,
        evidence=result.evidence,
        hint=result.hint,
    )
    assert result.ok, result.render(header=f"check 5 on {nexus_env.describe()}")


@rehearsal.ops
@rehearsal.check(6)
def test_low_intensity_load_keeps_p95_and_fail_rate(
    llm_client: Client,
    nexus_env: NexusEnvironment,
    scorecard_row: ScorecardRow,
    pytestconfig: pytest.Config,
) -> None:
    """The seed's load: 50 calls at concurrency 5 — p95 does not blow up relative to this
    environment's sequential latency, and at most a few calls fail."""
    if nexus_env.name != LOCAL and not pytestconfig.getoption("nexus_load"):
        pytest.skip(
            "check 6 sends 50 calls to the real provider: run with --nexus-load to allow it "
            "(or `nexus load --prompt ping --n 50 --concurrency 5 --purpose ops`)"
        )
    result = run_load(
        llm_client,
        prompt="ping",
        n=50,
        concurrency=5,
        purpose="ops",
        team="ops",
        project="rehearsal",
    )
    scorecard_row.record(
        measured=result.measured,
        threshold=result.threshold,
        evidence=result.evidence,
        hint=result.hint,
    )
    assert result.ok, result.render(header=f"check 6 on {nexus_env.describe()}")
