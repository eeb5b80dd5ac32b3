"""`nexus dedupe` and the seed's `tools/rehearsal_harness.py dedupe`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_smoke_command import HARNESS, NEXUS, run


def test_seed_line_passes_with_one_provider_call(tmp_path: Path) -> None:
    """The seed's dedupe line on local: one request reaches the emulator, four are hits."""
    done = run(
        [
            *HARNESS,
            "dedupe",
            "--prompt",
            "same prompt",
            "--n",
            "5",
            "--purpose",
            "ops",
            "--env",
            "local",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 5 calls reached the provider, 4 were dedupe hits" in done.stdout
    assert "the provider emulator received 1 request(s)" in done.stdout
    lines = [json.loads(x) for x in (tmp_path / "logs" / "llm_cost_ledger.jsonl").open()]
    hits = [x for x in lines if x["dedupe_hit"]]
    assert len(hits) == 4
    assert all(x["actual_cost_usd"] == 0 and x["saved_cost_usd"] > 0 for x in hits)
    assert "same prompt" not in (tmp_path / "logs" / "llm_audit.jsonl").read_text()


def test_a_second_run_is_answered_from_the_shared_cache(tmp_path: Path) -> None:
    """A rerun within the TTL, in a new process, is served by the state file: no request."""
    argv = [*NEXUS, "dedupe", "--prompt", "again", "--n", "3", "--purpose", "ops", "--env", "local"]
    assert run(argv, tmp_path).returncode == 0
    second = run(argv, tmp_path)
    assert second.returncode == 0, second.stdout
    assert "0 of 3 calls reached the provider, 3 were dedupe hits" in second.stdout


def test_dedupe_off_is_ng_with_the_seed_hint(tmp_path: Path) -> None:
    """With dedupe switched off every call is paid for: NG, exit 1, naming what to check."""
    done = run(
        [*NEXUS, "dedupe", "--prompt", "p", "--n", "4", "--purpose", "ops", "--env", "local"],
        tmp_path,
        LLM_DEDUPE="false",
    )
    assert done.returncode == 1
    assert "DEDUPE NG" in done.stdout
    assert "LLM_DEDUPE_TTL_S" in done.stdout
    assert "purpose / team / project" in done.stdout


def test_bad_count_is_bad_input(tmp_path: Path) -> None:
    """--n outside 2-100 exits 2 with one line."""
    done = run([*NEXUS, "dedupe", "--prompt", "p", "--n", "1", "--purpose", "ops"], tmp_path)
    assert done.returncode == 2
    assert "--n" in done.stderr
