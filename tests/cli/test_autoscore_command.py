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
    _line(
        tmp_path / "ledger.jsonl.1",
        NOW - timedelta(minutes=30),
        request_id="a",
        team="t",
        actual_cost_usd=1e-5,
    )
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


def _ledger_line(**over: object) -> dict[str, object]:
    line: dict[str, object] = {
        "ts": iso_ts(NOW),
        "env": "prod",
        "request_id": "r1",
        "provider": "gemini",
        "team": "default",
        "project": "nexus",
        "actual_cost_usd": 2e-5,
        "approx_tokens": False,
        "dedupe_hit": False,
    }
    line.update(over)
    return line


def _scored(
    tmp_path: Path, audit: list[dict[str, object]], ledger: list[dict[str, object]]
) -> dict[str, str]:
    audit_path, ledger_path = tmp_path / "audit.jsonl", tmp_path / "ledger.jsonl"
    for path, records in ((audit_path, audit), (ledger_path, ledger)):
        for record in records:
            JsonlAppender(path).append(record)
    window = read_window(audit_path, ledger_path, since=window_start(NOW, 4))
    outcomes = score(window, default_team="default", default_project="nexus")
    return {o.row: o.status for o in outcomes}


SUCCESS = {"ts": iso_ts(NOW), "event": "llm_success", "request_id": "r1", "provider": "gemini"}


def test_a_zero_cost_line_that_is_not_estimated_proves_no_call(tmp_path: Path) -> None:
    """Row 1 keeps check 1's rule: a cost, or approx_tokens=true."""
    assert _scored(tmp_path, [SUCCESS], [_ledger_line(actual_cost_usd=0.0)])["1"] == INCONCLUSIVE
    assert (
        _scored(tmp_path / "b", [SUCCESS], [_ledger_line(actual_cost_usd=0.0, approx_tokens=True)])[
            "1"
        ]
        == PASS
    )


def test_lines_without_a_request_id_join_nothing(tmp_path: Path) -> None:
    success = {k: v for k, v in SUCCESS.items() if k != "request_id"}
    line = {k: v for k, v in _ledger_line().items() if k != "request_id"}
    assert _scored(tmp_path, [success], [line])["1"] == INCONCLUSIVE


def test_untagged_lines_are_not_tagging(tmp_path: Path) -> None:
    """Ledger lines with no team or project are not a team/project besides the defaults."""
    line = {k: v for k, v in _ledger_line().items() if k not in ("team", "project")}
    assert _scored(tmp_path, [], [line, _ledger_line(request_id="r2")])["5"] == INCONCLUSIVE


def test_future_and_garbage_timestamps_are_outside_the_window(tmp_path: Path) -> None:
    future = iso_ts(NOW + timedelta(days=365 * 70))
    audit = [
        {**SUCCESS, "ts": future},
        {"ts": "yesterday", "event": "llm_dedupe_hit", "request_id": "r2"},
    ]
    ledger = [_ledger_line(ts=future), _ledger_line(ts="yesterday", request_id="r2")]
    statuses = _scored(tmp_path, audit, ledger)
    assert (statuses["1"], statuses["4"]) == (INCONCLUSIVE, INCONCLUSIVE)


def test_a_card_from_the_emulators_logs_says_so(tmp_path: Path) -> None:
    """Lines the `local` environment wrote (env "local") make the card an emulator run."""
    done = run(
        [*HARNESS, "smoke", "--prompt", "hello", "--purpose", "ops", "--env", "local"], tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run([*NEXUS, "autoscore", "--out", "card.md"], tmp_path)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["header"]["emulator"] == "yes"
    assert "EMULATOR RUN" in (tmp_path / "card.md").read_text()
