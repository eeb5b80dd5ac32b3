"""Regressions from the final review: each was a crash, a wrong exit code or a leak."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from nexus_llm import AsyncClient, Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.errors import BadRequestError
from tests.cli.test_smoke_command import NEXUS, run
from tests.support import metrics_server

GOOD = (
    '{"ts":"2026-01-05T10:00:00.000Z","env":"e","request_id":"r","provider":"gemini",'
    '"model":"m","team":"t","project":"p","purpose":"ops","input_tokens":10,"output_tokens":5,'
    '"cached_tokens":0,"reasoning_tokens":0,"actual_cost_usd":1.25,"approx_tokens":false,'
    '"price_version":"v1","dedupe_hit":false,"saved_cost_usd":0.0,"priced":true}'
)
REPORT = [*NEXUS, "report", "--from", "2026-01-01", "--to", "2026-01-31"]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.jsonl"
    path.write_text(GOOD + "\n")
    return path


def test_out_may_not_overwrite_the_ledger(tmp_path: Path, ledger: Path) -> None:
    """--out naming the ledger itself is refused and the ledger is untouched."""
    done = run([*REPORT, "--ledger", str(ledger), "--out", str(ledger)], tmp_path)
    assert done.returncode == 2
    assert "one of the files the report reads" in done.stderr
    assert ledger.read_text() == GOOD + "\n"


@pytest.mark.parametrize(
    "bad",
    [
        '{"ts":"2026-01-05T10:00:00Z","provider":"g","model":"m","team":"t","project":"p",'
        '"purpose":"o","input_tokens":' + "9" * 400 + "}",
        '{"ts":"2026-01-05T10:00:00Z","provider":"g","model":"m","team":"t","project":"p",'
        '"purpose":"o","actual_cost_usd":NaN}',
        '{"ts":"2026-01-05T10:00:00Z","provider":"g","model":"m","team":"t","project":"p",'
        '"purpose":"o","actual_cost_usd":-98.75}',
        '{"ts":"9999-12-31T23:00:00-05:00","provider":"g","model":"m","team":"t","project":"p",'
        '"purpose":"o"}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["huge-int", "nan", "negative", "ts-overflow", "deep-nesting"],
)
def test_poisoned_lines_are_corrupt_not_fatal(tmp_path: Path, ledger: Path, bad: str) -> None:
    """A line that would crash or poison the totals is skipped and counted instead."""
    with ledger.open("a") as out:
        out.write(bad + "\n")
    report = tmp_path / "r.json"
    done = run(
        [
            *REPORT,
            "--ledger",
            str(ledger),
            "--out",
            str(report),
            "--format",
            "json",
            "--no-rollups",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text())
    assert data["cost_usd"] == 1.25
    assert data["skipped_corrupt"] == 1


def test_absurd_range_exits_2(tmp_path: Path, ledger: Path) -> None:
    """A range too long to report is one line and exit 2, never a traceback."""
    done = run(
        [
            *NEXUS,
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "9999-12-31",
            "--ledger",
            str(ledger),
            "--out",
            str(tmp_path / "o.md"),
        ],
        tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "at most 3660 days" in done.stderr


def test_broken_template_exits_2(tmp_path: Path, ledger: Path) -> None:
    """A template that does not render is one line naming --template and exit 2."""
    template = tmp_path / "t.j2"
    template.write_text("{% if %}")
    done = run(
        [
            *REPORT,
            "--ledger",
            str(ledger),
            "--template",
            str(template),
            "--out",
            str(tmp_path / "o.md"),
        ],
        tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "--template" in done.stderr
    assert "Traceback" not in done.stderr


def test_audit_line_that_is_not_an_object(tmp_path: Path, ledger: Path) -> None:
    """A JSON array in the audit log is skipped, not a crash."""
    audit = tmp_path / "audit.jsonl"
    audit.write_text('[1234,"2026-01-05","llm_error"]\n')
    done = run(
        [*REPORT, "--ledger", str(ledger), "--audit", str(audit), "--out", str(tmp_path / "o.md")],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr


def test_dedupe_counts_the_provider_it_calls(tmp_path: Path) -> None:
    """`nexus dedupe --provider openai` on local cross-checks OpenAI's request count."""
    done = run(
        [
            *NEXUS,
            "dedupe",
            "--prompt",
            "same prompt",
            "--n",
            "3",
            "--purpose",
            "ops",
            "--env",
            "local",
            "--provider",
            "openai",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "received 1 request(s)" in done.stdout


def test_echoed_key_and_prompt_never_reach_the_logs(tmp_path: Path) -> None:
    """A provider error that echoes the key and the prompt is scrubbed before it is logged."""
    key, prompt = "glmSECRETKEY-123456", "MY PRIVATE PROMPT TEXT"

    def echo(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["messages"][-1]["content"]
        message = f"bad request: {sent} using {request.headers['authorization']}"
        return httpx.Response(400, json={"error": {"code": "1210", "message": message}})

    settings = Settings.from_env(
        {
            "GLM_API_KEY": key,
            "LLM_PROVIDER_ORDER": "glm",
            "LLM_DEDUPE": "false",
            "LLM_AUDIT_LOG_PATH": str(tmp_path / "a.jsonl"),
            "LLM_COST_LEDGER_PATH": str(tmp_path / "l.jsonl"),
        }
    )
    with (
        Client(settings, transport=httpx.MockTransport(echo)) as client,
        pytest.raises(BadRequestError) as caught,
    ):
        client.generate(prompt, purpose="ops")
    audit = (tmp_path / "a.jsonl").read_text()
    for text in (str(caught.value), caught.value.message, audit):
        assert key not in text
        assert prompt not in text
    assert "<redacted>" in str(caught.value)


def test_async_client_survives_a_second_event_loop(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    """One AsyncClient used under two asyncio.run() calls works in both."""
    settings = Settings.from_env(
        {
            "GEMINI_API_KEY": fresh_emulator.gemini_key,
            "GEMINI_BASE_URL": fresh_emulator.base_url,
            "LLM_PROVIDER_ORDER": "gemini",
            "LLM_DEDUPE": "false",
            "LLM_AUDIT_LOG_PATH": str(tmp_path / "a.jsonl"),
            "LLM_COST_LEDGER_PATH": str(tmp_path / "l.jsonl"),
        }
    )
    client = AsyncClient(settings)

    async def once(prompt: str) -> str:
        return (await client.generate(prompt, purpose="ops")).finish_reason

    assert asyncio.run(once("first")) == "STOP"
    assert asyncio.run(once("second")) == "STOP"

    async def close() -> None:
        await client.aclose()

    asyncio.run(close())


def test_metrics_serve_skips_a_damaged_file(tmp_path: Path) -> None:
    """A truncated per-process file is skipped: the scrape still answers 200."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"junk")
    with metrics_server(metrics_dir) as (url, stderr):
        reply = httpx.get(url, timeout=10)
    assert reply.status_code == 200
    assert not any("Traceback" in line for line in stderr)
