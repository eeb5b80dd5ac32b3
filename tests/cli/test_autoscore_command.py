"""`nexus autoscore` and the seed's `tools/rehearsal_autoscore.py`: the scorecard filled from
the last hours of logs."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nexus_llm.observe.audit import iso_ts
from nexus_llm.observe.jsonl import JsonlAppender
from pytest_nexus_rehearsal.checks.autoscore import read_window, score, window_start
from pytest_nexus_rehearsal.scorecard import INCONCLUSIVE, MANUAL, NOT_RUN, PASS
from tests.cli.test_smoke_command import HARNESS, NEXUS, REPO, run

AUTOSCORE_TOOL = [sys.executable, str(REPO / "tools" / "rehearsal_autoscore.py")]
SEED_FLAGS = [
    "--topology",
    "single+redis",
    "--providers",
    "gemini-first (openai/anthropic/glm optional)",
]
FILLED = Path("templates") / "REHEARSAL_SCORECARD_FILLED.md"


def _statuses(card_json: Path) -> dict[str, str]:
    card = json.loads(card_json.read_text())
    return {row["row"]: row["status"] for row in card["rows"]}


def test_seed_line_after_checks_1_4_5_fills_the_card(tmp_path: Path) -> None:
    """After the seed's smoke, dedupe and tagging lines in this folder, the seed's autoscore
    line exits 0 and writes templates/REHEARSAL_SCORECARD_FILLED.md with rows 1, 4, 5 and the
    autoscore PASS, 3, 7, 8 MANUAL and 2, 6 NOT RUN."""
    for argv in (
        ["smoke", "--prompt", "hello", "--purpose", "ops"],
        ["dedupe", "--prompt", "same prompt", "--n", "5", "--purpose", "ops"],
        [
            "tagging",
            "--prompt",
            "tag test",
            "--team",
            "ops",
            "--project",
            "finops",
            "--purpose",
            "ops",
        ],
    ):
        done = run([*HARNESS, *argv, "--env", "local"], tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    done = run([*AUTOSCORE_TOOL, *SEED_FLAGS], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    filled = tmp_path / FILLED
    text = filled.read_text()
    assert "| Topology | single+redis |" in text
    assert "gemini-first (openai/anthropic/glm optional)" in text
    assert _statuses(filled.with_suffix(".json")) == {
        "1": PASS,
        "2": NOT_RUN,
        "3": MANUAL,
        "4": PASS,
        "5": PASS,
        "6": NOT_RUN,
        "7": MANUAL,
        "8": MANUAL,
        "autoscore": PASS,
    }
    assert "4 llm_dedupe_hit" in text
    assert "ops/finops" in text


def test_no_logs_is_ng_not_a_pass(tmp_path: Path) -> None:
    """With nothing in the logs every judged row is INCONCLUSIVE and the autoscore NG (exit
    1), saying what to run."""
    done = run([*NEXUS, "autoscore", "--out", "card.md"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "what to check: missing: Basic call" in done.stdout
    statuses = _statuses(tmp_path / "card.json")
    assert (statuses["1"], statuses["4"], statuses["5"]) == (INCONCLUSIVE,) * 3
    assert statuses["autoscore"] == "FAIL"


@pytest.mark.parametrize("hours", ["1", "5", "soon"])
def test_hours_outside_the_seeds_range_are_one_line(tmp_path: Path, hours: str) -> None:
    done = run([*NEXUS, "autoscore", "--hours", hours], tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"{hours!r} is invalid for --hours: expected 2-4" in done.stderr


def test_an_unwritable_card_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    done = run([*NEXUS, "autoscore", "--out", "a-file/card.md"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("nexus autoscore: cannot write a-file/card.md")
    assert done.stderr.count("\n") == 1


NOW = datetime.now(UTC)


def _line(path: Path, moment: datetime, **fields: object) -> None:
    JsonlAppender(path).append({"ts": iso_ts(moment), **fields})


def test_only_the_window_counts(tmp_path: Path) -> None:
    """Lines older than the window do not count, in the file or in a rotation; a rotation
    written within the window does; a success without its ledger line is not a call."""
    audit, ledger = tmp_path / "audit.jsonl", tmp_path / "ledger.jsonl"
    old = NOW - timedelta(hours=5)
    # A rotation last written five hours ago: skipped without reading.
    rotated = tmp_path / "audit.jsonl.1"
    _line(rotated, old, event="llm_dedupe_hit", request_id="old-hit")
    os.utime(rotated, (time.time() - 5 * 3600, time.time() - 5 * 3600))
    # A fresh rotation of the ledger: read.
    _line(tmp_path / "ledger.jsonl.1", NOW - timedelta(minutes=30), request_id="a", team="t")
    _line(audit, old, event="llm_success", request_id="stale")
    _line(audit, NOW - timedelta(minutes=20), event="llm_success", request_id="a")
    _line(audit, NOW - timedelta(minutes=10), event="llm_success", request_id="no-ledger")
    _line(ledger, old, request_id="stale", team="ops", project="p")
    window = read_window(audit, ledger, since=window_start(NOW, 4))
    outcomes = {o.row: o for o in score(window, default_team="t", default_project="")}
    assert outcomes["1"].status == PASS
    assert "2 llm_success, 1 paid ledger line(s), 1 matched" in outcomes["1"].measured
    assert outcomes["4"].status == INCONCLUSIVE  # the only hit is in the old rotation
    assert outcomes["5"].status == INCONCLUSIVE  # ops/p is older than the window


def test_a_window_outside_two_to_four_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 2-4"):
        window_start(NOW, 6)
