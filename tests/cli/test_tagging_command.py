"""`nexus tagging` (check 5), and the check's NG path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nexus_llm import Client, Response, Settings
from nexus_llm.emulator import Emulator
from pytest_nexus_rehearsal.checks.tagging import run_tagging
from tests.cli.test_smoke_command import HARNESS, NEXUS, run


def test_seed_line_passes_on_local(tmp_path: Path) -> None:
    """The seed's tagging line: three paths keep team/project and the metric splits."""
    done = run(
        [
            *HARNESS,
            "tagging",
            "--prompt",
            "tag test",
            "--team",
            "ops",
            "--project",
            "finops",
            "--purpose",
            "ops",
            "--env",
            "local",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TAGGING OK" in done.stdout
    assert "tags() in an async task" in done.stdout
    lines = [json.loads(x) for x in (tmp_path / "logs" / "llm_cost_ledger.jsonl").open()]
    assert len(lines) == 3
    assert {(x["team"], x["project"]) for x in lines} == {("ops", "finops")}


def test_team_and_project_are_required(tmp_path: Path) -> None:
    """Without --team the check has nothing to look for: exit 2."""
    done = run([*NEXUS, "tagging", "--prompt", "t", "--purpose", "ops", "--project", "p"], tmp_path)
    assert done.returncode == 2
    assert "--team" in done.stderr


class TagDroppingClient(Client):
    """A client that loses the caller's tags, as a broken integration would."""

    def generate(self, prompt: str | None = None, **kwargs: Any) -> Response:
        kwargs.pop("team", None)
        kwargs.pop("project", None)
        return super().generate(prompt, **kwargs)


def test_defaults_only_is_ng_with_the_seed_hint(fresh_emulator: Emulator, tmp_path: Path) -> None:
    """When only the defaults reach the ledger, the check is NG and says what to check."""
    settings = Settings.from_env(
        {
            "GEMINI_API_KEY": fresh_emulator.gemini_key,
            "GEMINI_BASE_URL": fresh_emulator.base_url,
            "LLM_PROVIDER_ORDER": "gemini",
            "LLM_AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"),
            "LLM_COST_LEDGER_PATH": str(tmp_path / "ledger.jsonl"),
        }
    )
    with TagDroppingClient(settings) as client:
        result = run_tagging(client, prompt="t", team="ng-team", project="ng-proj", purpose="ops")
    assert not result.ok
    failed = {f.name: f.detail for f in result.findings if not f.ok}
    assert "explicit tags" in failed
    assert "the defaults" in failed["explicit tags"]
    assert "LLM_DEFAULT_TEAM" in result.hint
