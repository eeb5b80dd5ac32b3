"""Prometheus metrics: what a call records, the exposition checked by promtool, multi-process
aggregation served by `nexus metrics serve`, and the tag cardinality guard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.errors import RateLimitError
from nexus_llm.observe.metrics import OTHER, TagGuard
from tests.support import clean_environ, emulator_settings, metrics_server, require_executable


def settings_for(emulator: Emulator, tmp_path: Path, **extra: str) -> Settings:
    return emulator_settings(emulator, tmp_path, "gemini", **extra)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def promtool_check(text: bytes) -> subprocess.CompletedProcess[str]:
    promtool = require_executable("promtool", needed_for="checking the metrics exposition")
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=text.decode(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class TestWhatACallRecords:
    def test_success_records_request_tokens_cost_and_latency(
        self, fresh_emulator: Emulator, tmp_path: Path
    ) -> None:
        """One call moves the request, token, cost and latency series by what it used."""
        before = {
            "req": sample(
                "nexus_llm_requests_total",
                provider="gemini",
                model="gemini-2.5-flash",
                outcome="success",
            ),
            "cost": sample(
                "nexus_llm_cost_usd_total",
                provider="gemini",
                team="m-team",
                project="m-proj",
                purpose="metrics",
            ),
            "in": sample(
                "nexus_llm_tokens_total",
                provider="gemini",
                model="gemini-2.5-flash",
                direction="input",
            ),
            "lat": sample(
                "nexus_llm_request_duration_seconds_count",
                provider="gemini",
                model="gemini-2.5-flash",
            ),
        }
        with Client(settings_for(fresh_emulator, tmp_path)) as client:
            reply = client.generate("count me", purpose="metrics", team="m-team", project="m-proj")
        assert (
            sample(
                "nexus_llm_requests_total",
                provider="gemini",
                model="gemini-2.5-flash",
                outcome="success",
            )
            == before["req"] + 1
        )
        assert sample(
            "nexus_llm_cost_usd_total",
            provider="gemini",
            team="m-team",
            project="m-proj",
            purpose="metrics",
        ) == pytest.approx(before["cost"] + reply.cost_usd)
        assert (
            sample(
                "nexus_llm_tokens_total",
                provider="gemini",
                model="gemini-2.5-flash",
                direction="input",
            )
            == before["in"] + reply.usage.input_tokens
        )
        assert (
            sample(
                "nexus_llm_request_duration_seconds_count",
                provider="gemini",
                model="gemini-2.5-flash",
            )
            == before["lat"] + 1
        )

    def test_429_is_counted(self, fresh_emulator: Emulator, tmp_path: Path) -> None:
        """A 429 moves the rate-limit counter and the request counter's rate_limit outcome."""
        before = sample("nexus_llm_rate_limited_total", provider="gemini")
        fresh_emulator.inject("gemini", "rate_limit", times=1)
        with (
            Client(settings_for(fresh_emulator, tmp_path)) as client,
            pytest.raises(RateLimitError),
        ):
            client.generate("slow down", purpose="metrics")
        assert sample("nexus_llm_rate_limited_total", provider="gemini") == before + 1
        assert (
            sample(
                "nexus_llm_requests_total",
                provider="gemini",
                model="gemini-2.5-flash",
                outcome="rate_limit",
            )
            >= 1
        )

    def test_a_rate_limit_inside_a_200_is_counted_too(self, tmp_path: Path) -> None:
        """An OpenAI error envelope in a 200 body that says rate_limit_exceeded (as an error
        chunk mid-stream does) counts as a rate limit, though its status is 200."""
        envelope = {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }
        settings = Settings.from_env(
            clean_environ(
                LLM_PROVIDER_ORDER="openai",
                OPENAI_API_KEY="sk-test",
                LLM_RETRY_MAX_ATTEMPTS="1",
                LLM_DEDUPE="false",
                LLM_AUDIT_LOG_PATH=str(tmp_path / "audit.jsonl"),
                LLM_COST_LEDGER_PATH=str(tmp_path / "ledger.jsonl"),
                LLM_STATE_PATH=str(tmp_path / "state.sqlite3"),
            )
        )
        before = sample("nexus_llm_rate_limited_total", provider="openai")
        answer = httpx.MockTransport(lambda request: httpx.Response(200, json=envelope))
        with Client(settings, transport=answer) as client, pytest.raises(RateLimitError) as caught:
            client.generate("slow down", purpose="metrics")
        assert caught.value.status == 200
        assert sample("nexus_llm_rate_limited_total", provider="openai") == before + 1


def test_exposition_passes_promtool(fresh_emulator: Emulator, tmp_path: Path) -> None:
    """After real calls the whole exposition passes `promtool check metrics`."""
    with Client(settings_for(fresh_emulator, tmp_path, LLM_DEDUPE="true")) as client:
        client.generate("a", purpose="metrics")
        client.generate("a", purpose="metrics")  # a dedupe hit
    text = generate_latest(REGISTRY)
    assert b"nexus_llm_cost_usd_total" in text
    assert b"nexus_llm_dedupe_hits_total" in text
    done = promtool_check(text)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_exposition_fails_promtool() -> None:
    """The promtool check can fail: a counter without _total is reported."""
    done = promtool_check(b"# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter 1\n")
    assert done.returncode != 0


def test_guard_folds_extra_tag_values() -> None:
    """Past the limit, new values of a tag become _other; known ones keep their name."""
    guard = TagGuard(limit=2)
    assert [guard("team", t) for t in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]
    assert guard("project", "c") == "c"  # each tag has its own budget


def test_metrics_serve_aggregates_processes(fresh_emulator: Emulator, tmp_path: Path) -> None:
    """Two app processes write to PROMETHEUS_MULTIPROC_DIR; `nexus metrics serve` sums them."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    env = clean_environ(
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        GEMINI_API_KEY=fresh_emulator.gemini_key,
        GEMINI_BASE_URL=fresh_emulator.base_url,
        LLM_PROVIDER_ORDER="gemini",
        LLM_DEDUPE="false",
    )
    script = (
        "import nexus_llm, sys\n"
        "with nexus_llm.Client() as c:\n"
        "    c.generate('hi ' + sys.argv[1], purpose='multi', team='t1', project='p1')\n"
    )
    for n in range(2):
        subprocess.run(
            [sys.executable, "-c", script, str(n)], cwd=tmp_path, env=env, check=True, timeout=60
        )
    with metrics_server(metrics_dir) as (url, _stderr):
        text = httpx.get(url, timeout=10).content
    line = next(
        x
        for x in text.decode().splitlines()
        if x.startswith("nexus_llm_requests_total{") and 'outcome="success"' in x
    )
    assert line.endswith(" 2.0")
    done = promtool_check(text)
    assert done.returncode == 0, done.stdout + done.stderr
