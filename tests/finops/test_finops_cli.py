"""`nexus report` and the seed's `tools/rehearsal_harness.py report`, run as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.finops.finops_support import CALLS, write_calls
from tests.support import clean_environ

REPO = Path(__file__).resolve().parents[2]
NEXUS = [sys.executable, "-m", "pytest_nexus_rehearsal.cli", "report"]
HARNESS = [sys.executable, str(REPO / "tools" / "rehearsal_harness.py"), "report"]
JANUARY = ["--from", "2026-01-01", "--to", "2026-01-31"]


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean_environ(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """The hand-made ledger: in January 2026, 10 calls for $209.00 (9.00 on 1-5 Jan, 200.00
    at 00:00 on the 6th)."""
    path = tmp_path / "data" / "llm_cost_ledger.jsonl"
    write_calls(path, CALLS)
    return path


class TestWritten:
    def test_seed_line(self, tmp_path: Path, ledger: Path) -> None:
        """The seed's line writes logs/finops_rehearsal.md and prints the total; exit 0."""
        done = run(
            [*HARNESS, *JANUARY, "--out", "logs/finops_rehearsal.md"],
            tmp_path,
            LLM_COST_LEDGER_PATH=str(ledger),
            LLM_AUDIT_LOG_PATH=str(tmp_path / "data" / "llm_audit.jsonl"),
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert "2026-01-01..2026-01-31 (UTC): $209.00 over 10 calls" in done.stdout
        text = (tmp_path / "logs" / "finops_rehearsal.md").read_text("utf-8")
        assert "**$209.00**" in text
        assert "xychart-beta" in text
        assert (ledger.parent / "llm_cost_ledger.jsonl.rollup.json").exists()

    @pytest.mark.parametrize("fmt", ["json", "csv"])
    def test_json_and_csv(self, tmp_path: Path, ledger: Path, fmt: str) -> None:
        """--format json and csv write those formats, with the same total."""
        out = tmp_path / f"report.{fmt}"
        done = run(
            [*NEXUS, *JANUARY, "--out", str(out), "--format", fmt, "--ledger", str(ledger)],
            tmp_path,
        )
        assert done.returncode == 0, done.stderr
        text = out.read_text("utf-8")
        if fmt == "json":
            data = json.loads(text)
            assert (data["cost_usd"], data["calls"], data["timezone"]) == (209.0, 10, "UTC")
        else:
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0][0] == "section"
            assert rows[1][:4] == ["total", "2026-01-01..2026-01-31", "10", "209.000000"]

    def test_user_template_and_no_rollups(self, tmp_path: Path, ledger: Path) -> None:
        """--template renders with the user's file; --no-rollups leaves no rollup behind."""
        template = tmp_path / "mine.md"
        template.write_text("Spent {{ r.cost_usd | usd }} in {{ r.calls }} calls.\n", "utf-8")
        out = tmp_path / "out" / "report.md"
        done = run(
            [
                *NEXUS,
                *JANUARY,
                *("--out", str(out), "--ledger", str(ledger)),
                *("--template", str(template), "--no-rollups"),
            ],
            tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert out.read_text("utf-8") == "Spent $209.00 in 10 calls.\n"
        assert sorted(p.name for p in ledger.parent.iterdir()) == ["llm_cost_ledger.jsonl"]

    def test_empty_range(self, tmp_path: Path, ledger: Path) -> None:
        """A range without records still writes a report saying so, with $0.00; exit 0."""
        out = tmp_path / "empty.md"
        done = run(
            [*NEXUS, "--from", "2027-01-01", "--to", "2027-01-31", "--out", str(out)],
            tmp_path,
            LLM_COST_LEDGER_PATH=str(ledger),
        )
        assert done.returncode == 0, done.stderr
        assert "no records in the range: $0.00" in done.stdout
        assert "No records in this range" in out.read_text("utf-8")

    def test_damage_is_mentioned(self, tmp_path: Path, ledger: Path) -> None:
        """Skipped lines are mentioned in the command's summary line."""
        with ledger.open("ab") as out:
            out.write(b"garbage\n{not json\n")
        done = run(
            [*NEXUS, *JANUARY, "--out", str(tmp_path / "r.md"), "--ledger", str(ledger)], tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert "2 damaged line(s) skipped" in done.stdout


class TestBadInput:
    @pytest.mark.parametrize(
        ("args", "words"),
        [
            (
                ["--from", "2026-13-01", "--to", "2026-01-31"],
                ["--from", "2026-13-01", "YYYY-MM-DD"],
            ),
            (["--from", "yesterday", "--to", "2026-01-31"], ["--from", "yesterday", "YYYY-MM-DD"]),
            (["--from", "2026-01-01", "--to", "yesterday"], ["--to", "yesterday", "YYYY-MM-DD"]),
            (["--from", "2026-01-31", "--to", "2026-01-01"], ["--to", "before", "--from"]),
            ([*JANUARY, "--ledger", "{tmp}/missing.jsonl"], ["--ledger", "missing.jsonl"]),
            ([*JANUARY, "--ledger", "{tmp}/nothing-*.jsonl"], ["--ledger", "nothing-*.jsonl"]),
            ([*JANUARY, "--template", "{tmp}/missing.md"], ["--template", "missing.md"]),
        ],
        ids=[
            "month-13",
            "from-word",
            "to-word",
            "to-before-from",
            "missing-ledger",
            "glob-matches-nothing",
            "missing-template",
        ],
    )
    def test_one_line_naming_the_flag(
        self, tmp_path: Path, ledger: Path, args: list[str], words: list[str]
    ) -> None:
        """Bad input exits 2 with one line on stderr naming the flag; nothing is written."""
        out = tmp_path / "report.md"
        argv = [*NEXUS, *(a.replace("{tmp}", str(tmp_path)) for a in args), "--out", str(out)]
        done = run(argv, tmp_path, LLM_COST_LEDGER_PATH=str(ledger))
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("nexus report: ")
        for word in words:
            assert word in lines[0]
        assert not out.exists()

    def test_unwritable_out(self, tmp_path: Path, ledger: Path) -> None:
        """An --out under a regular file exits 2 with one line naming --out."""
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory\n", "utf-8")
        out = blocker / "report.md"
        done = run([*NEXUS, *JANUARY, "--out", str(out), "--ledger", str(ledger)], tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"nexus report: --out {out}: cannot write")
        assert "Traceback" not in done.stderr
