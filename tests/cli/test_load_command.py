"""`nexus load` and the seed's `tools/rehearsal_load_test.py` (check 6), and how the check
judges p95 and failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexus_llm import Client
from nexus_llm.emulator import Emulator
from pytest_nexus_rehearsal.checks.load import (
    SEED_NG_HINT,
    CallSample,
    allowed_failures,
    judge,
    percentile,
    run_load,
    threshold_text,
)
from pytest_nexus_rehearsal.checks.result import CheckResult
from tests.cli.test_smoke_command import NEXUS, REPO, run
from tests.support import clean_environ, emulator_settings

LOAD_TOOL = [sys.executable, str(REPO / "tools" / "rehearsal_load_test.py")]
SEED_FLAGS = [
    "--prompt",
    "ping",
    "--n",
    "50",
    "--concurrency",
    "5",
    "--purpose",
    "ops",
    "--team",
    "ops",
    "--project",
    "rehearsal",
]


def test_seed_line_passes_on_local(tmp_path: Path) -> None:
    """The seed's load line, verbatim, on local: LOAD OK, 5 + 50 calls in the ledger, every
    one tagged, none a dedupe hit (the same prompt 50 times must still reach the provider)."""
    done = run([*LOAD_TOOL, *SEED_FLAGS, "--env", "local"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOAD OK" in done.stdout
    assert "0 of 55 (0%; at most 2): none" in done.stdout  # 5 sequential + 50
    lines = [json.loads(x) for x in (tmp_path / "logs" / "llm_cost_ledger.jsonl").open()]
    assert len(lines) == 55
    assert {(x["team"], x["project"], x["purpose"]) for x in lines} == {("ops", "rehearsal", "ops")}
    assert not any(x["dedupe_hit"] for x in lines)


@pytest.mark.parametrize(
    ("flag", "value", "allowed"),
    [("--n", "0", "1-1000"), ("--n", "many", "1-1000"), ("--concurrency", "51", "1-50")],
)
def test_bad_numbers_are_one_line_and_exit_2(
    tmp_path: Path, flag: str, value: str, allowed: str
) -> None:
    argv = [*NEXUS, "load", "--prompt", "p", "--purpose", "ops", flag, value, "--env", "local"]
    done = run(argv, tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"{value!r} is invalid for {flag}: expected {allowed}" in done.stderr


def test_rate_limits_under_load_are_ng_with_the_seed_hint(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    """Ten 429s among the 50 calls (no retry allowed, a breaker that does not open) are more
    than "a few": NG, counted by kind, with the seed's hint."""
    settings = emulator_settings(
        fresh_emulator,
        tmp_path,
        "gemini",
        LLM_BREAKER_FAILURE_THRESHOLD="1000",
        LLM_BREAKER_MIN_CALLS="1000",
    )
    with Client(settings) as client:
        # Faults queue: the 5 sequential calls get a harmless 1 ms delay, then the first 10
        # calls of the load get a 429 each.
        fresh_emulator.inject("gemini", "slow", times=5, delay_s=0.001)
        fresh_emulator.inject("gemini", "rate_limit", times=10)
        result = run_load(client, prompt="ping", n=50, concurrency=5, purpose="ops")
    assert not result.ok
    failures = next(f for f in result.findings if f.name == "failures")
    assert not failures.ok
    assert failures.detail.startswith("10 of 55")
    assert "10 rate_limit (HTTP 429)" in failures.detail
    assert result.hint == SEED_NG_HINT


def test_a_breaker_opened_by_the_load_is_named(fresh_emulator: Emulator, tmp_path: Path) -> None:
    """With the default breaker, a run of 429s opens it and the calls after fail fast: the
    failures name both kinds."""
    settings = emulator_settings(fresh_emulator, tmp_path, "gemini")
    with Client(settings) as client:
        fresh_emulator.inject("gemini", "slow", times=5, delay_s=0.001)
        fresh_emulator.inject("gemini", "rate_limit", times=10)
        result = run_load(client, prompt="ping", n=50, concurrency=5, purpose="ops")
    failures = next(f for f in result.findings if f.name == "failures")
    assert not failures.ok
    assert "rate_limit (HTTP 429)" in failures.detail
    assert "no_provider_available" in failures.detail


def test_a_provider_that_never_answers_gives_no_baseline(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    """A rejected key fails the sequential calls: NG with the reason, and no load is sent."""
    fresh_emulator.inject("gemini", "bad_key")
    settings = emulator_settings(fresh_emulator, tmp_path, "gemini")
    with Client(settings) as client:
        result = run_load(client, prompt="ping", n=50, concurrency=5, purpose="ops")
    assert not result.ok
    assert "none of 5 sequential calls succeeded (auth)" in result.evidence
    assert fresh_emulator.request_count("gemini") == 5


def _samples(seconds: list[float], failed: int = 0) -> list[CallSample]:
    return [
        CallSample(s, "rate_limit" if i < failed else "ok", 429 if i < failed else 200)
        for i, s in enumerate(seconds)
    ]


class TestJudge:
    def test_p95_within_the_limit_is_ok(self) -> None:
        """p95 of 50 calls under 10 × the sequential median + 0.5 s: OK."""
        result = judge(
            CheckResult("load"),
            _samples([0.010] * 45 + [0.200] * 5),
            baseline_s=0.010,
            wall_s=1.0,
            concurrency=5,
        )
        assert result.ok
        assert "p95 200.0 ms" in result.evidence

    def test_p95_past_the_limit_is_ng(self) -> None:
        """Three calls in 50 that waited out a backoff push p95 past the limit: NG."""
        result = judge(
            CheckResult("load"),
            _samples([0.010] * 47 + [2.0] * 3),
            baseline_s=0.010,
            wall_s=2.5,
            concurrency=5,
        )
        assert not result.ok
        p95 = next(f for f in result.findings if f.name == "p95")
        assert not p95.ok
        assert "limit 600 ms" in p95.detail

    @pytest.mark.parametrize(("failed", "ok"), [(0, True), (2, True), (3, False)])
    def test_a_few_failures_are_allowed(self, failed: int, ok: bool) -> None:
        """ "Zero to a few": 2 of 50 pass, 3 do not."""
        result = judge(
            CheckResult("load"),
            _samples([0.01] * 50, failed=failed),
            baseline_s=0.01,
            wall_s=1.0,
            concurrency=5,
        )
        assert result.ok is ok

    def test_thresholds_in_words(self) -> None:
        assert allowed_failures(50) == 2
        assert allowed_failures(10) == 0
        assert percentile([float(x) for x in range(1, 101)], 0.95) == 95.0
        assert percentile([3.0], 0.95) == 3.0
        assert threshold_text(0.01) == (
            "p95 <= 600 ms (10 × sequential p50 10.0 ms + 500 ms); failures <= 4% of the calls"
        )


def test_a_prompt_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 in --prompt (argv keeps them as lone surrogates): one line,
    exit 2, no traceback — for load as for every calling command."""
    argv = [
        os.fsencode(arg) for arg in [*LOAD_TOOL, "--n", "3", "--purpose", "ops", "--env", "local"]
    ]
    done = subprocess.run(
        [*argv, b"--prompt", b"p\xff"],
        cwd=tmp_path,
        env=clean_environ(),
        capture_output=True,
        timeout=120,
    )
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err
    assert "--prompt is not valid UTF-8" in err
    assert err.count("\n") == 1


def test_the_library_refuses_a_lone_surrogate_by_name(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    """Client.generate with a lone surrogate in the prompt: a ValueError saying so, nothing
    sent."""
    settings = emulator_settings(fresh_emulator, tmp_path, "gemini")
    with Client(settings) as client, pytest.raises(ValueError, match="not valid Unicode"):
        client.generate("p\udcff", purpose="ops")
    assert fresh_emulator.request_count("gemini") == 0


def test_failures_of_the_sequential_calls_count_too() -> None:
    """Four sequential calls that failed cannot hide behind a load that went well."""
    warmup = [CallSample(0.01, "provider_timeout")] * 4 + [CallSample(0.01, "ok", 200)]
    result = judge(
        CheckResult("load"),
        _samples([0.01] * 50),
        baseline_s=0.01,
        wall_s=1.0,
        concurrency=5,
        warmup=warmup,
    )
    failures = next(f for f in result.findings if f.name == "failures")
    assert not failures.ok
    assert failures.detail.startswith("4 of 55")
