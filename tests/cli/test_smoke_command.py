"""`nexus smoke` and the seed's `tools/rehearsal_harness.py smoke`, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nexus_llm.emulator import Emulator
from tests.support import clean_environ

REPO = Path(__file__).resolve().parents[2]
NEXUS = [sys.executable, "-m", "pytest_nexus_rehearsal.cli"]
HARNESS = [sys.executable, str(REPO / "tools" / "rehearsal_harness.py")]


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


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestLocalEnvironment:
    def test_seed_line_with_env_local_passes_and_writes_both_files(self, tmp_path: Path) -> None:
        """The seed's smoke line with --env local exits 0 and leaves logs/ with both files."""
        done = run(
            [*HARNESS, "smoke", "--prompt", "hello", "--purpose", "ops", "--env", "local"], tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SMOKE OK" in done.stdout
        assert "EMULATOR" in done.stdout
        audit = read_jsonl(tmp_path / "logs" / "llm_audit.jsonl")
        ledger = read_jsonl(tmp_path / "logs" / "llm_cost_ledger.jsonl")
        assert [e["event"] for e in audit] == ["llm_success"]
        assert audit[0]["env"] == "local"
        assert ledger[0]["request_id"] == audit[0]["request_id"]
        assert isinstance(ledger[0]["actual_cost_usd"], float)
        assert ledger[0]["actual_cost_usd"] > 0

    def test_tags_and_paths_from_flags_and_env(self, tmp_path: Path) -> None:
        """--team/--project land in the ledger, and the seed's path variables are honoured."""
        audit, ledger = tmp_path / "a" / "audit.jsonl", tmp_path / "b" / "ledger.jsonl"
        done = run(
            [
                *NEXUS,
                "smoke",
                "--prompt",
                "hello",
                "--purpose",
                "ops",
                "--team",
                "ops",
                "--project",
                "finops",
                "--env",
                "local",
            ],
            tmp_path,
            LLM_AUDIT_LOG_PATH=str(audit),
            LLM_COST_LEDGER_PATH=str(ledger),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        line = read_jsonl(ledger)[0]
        assert (line["team"], line["project"], line["purpose"]) == ("ops", "finops", "ops")
        assert "hello" not in audit.read_text()

    def test_local_ignores_real_keys(self, tmp_path: Path) -> None:
        """With --env local a real key in the environment is never sent anywhere."""
        done = run(
            [*NEXUS, "smoke", "--prompt", "hi", "--purpose", "ops", "--env", "local"],
            tmp_path,
            GEMINI_API_KEY="real-key-must-not-be-used",
            GEMINI_BASE_URL="http://127.0.0.1:9",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert (
            "real-key-must-not-be-used" not in (tmp_path / "logs" / "llm_audit.jsonl").read_text()
        )


class TestNgPaths:
    def test_no_provider_configured_exits_2_naming_what_to_set(self, tmp_path: Path) -> None:
        """Without any key, smoke exits 2 with one line naming the variable and --env local."""
        done = run([*HARNESS, "smoke", "--prompt", "hello", "--purpose", "ops"], tmp_path)
        assert done.returncode == 2
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "GEMINI_API_KEY" in lines[0]
        assert "--env local" in lines[0]
        assert not (tmp_path / "logs").exists(), "no silent fallback to the emulator"

    def test_wrong_key_is_ng_with_the_key_hint_and_no_leak(
        self, tmp_path: Path, fresh_emulator: Emulator
    ) -> None:
        """A key the provider rejects exits 1, records llm_error, and never prints the key."""
        key = "wrong-key-4f9a1c77"
        done = run(
            [*NEXUS, "smoke", "--prompt", "hello", "--purpose", "ops"],
            tmp_path,
            GEMINI_API_KEY=key,
            GEMINI_BASE_URL=fresh_emulator.base_url,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "SMOKE NG" in done.stdout
        assert "GEMINI_API_KEY" in done.stdout
        assert "Traceback" not in done.stderr
        audit_text = (tmp_path / "logs" / "llm_audit.jsonl").read_text()
        assert key not in done.stdout + done.stderr + audit_text
        events = read_jsonl(tmp_path / "logs" / "llm_audit.jsonl")
        assert events[0]["event"] == "llm_error"
        assert events[0]["error_type"] == "auth"
        assert not (tmp_path / "logs" / "llm_cost_ledger.jsonl").exists()

    def test_provider_outage_is_ng(self, tmp_path: Path, fresh_emulator: Emulator) -> None:
        """A 503 from the provider makes the smoke NG with exit 1."""
        fresh_emulator.inject("gemini", "unavailable")
        done = run(
            [*NEXUS, "smoke", "--prompt", "hello", "--purpose", "ops"],
            tmp_path,
            GEMINI_API_KEY=fresh_emulator.gemini_key,
            GEMINI_BASE_URL=fresh_emulator.base_url,
        )
        assert done.returncode == 1
        assert "overloaded" in done.stdout

    @pytest.mark.parametrize(
        ("argv", "env", "named"),
        [
            (["--purpose", "bad purpose!"], {}, "--purpose"),
            (["--purpose", "ops"], {"LLM_PROVIDER_ORDER": "gemini,foo"}, "LLM_PROVIDER_ORDER"),
            (["--purpose", "ops"], {"ANOMALY_WINDOW_MIN": "-3"}, "ANOMALY_WINDOW_MIN"),
            (["--purpose", "ops"], {"LLM_TIMEOUT_S": "soon"}, "LLM_TIMEOUT_S"),
            (["--purpose", "ops", "--provider", "mistral"], {}, "--provider"),
            (["--purpose", "ops", "--env", "bad env"], {}, "--env"),
        ],
    )
    def test_bad_input_exits_2_with_one_line(
        self, tmp_path: Path, argv: list[str], env: dict[str, str], named: str
    ) -> None:
        """Bad flags or settings exit 2 with a line naming the culprit, never a traceback."""
        done = run(
            [*NEXUS, "smoke", "--prompt", "hi", *argv], tmp_path, GEMINI_API_KEY="k-123456", **env
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert named in done.stderr
        assert "Traceback" not in done.stderr
        assert "k-123456" not in done.stderr


class TestEmulatorCommand:
    def test_emulator_command_serves_until_interrupted(self, tmp_path: Path) -> None:
        """`nexus emulator --port 0` prints its URL, answers Gemini calls and stops on SIGINT."""
        import signal

        import httpx

        proc = subprocess.Popen(
            [*NEXUS, "emulator", "--port", "0"],
            cwd=tmp_path,
            env=clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            url = next(word for word in banner.split() if word.startswith("http://127.0.0.1:"))
            reply = httpx.post(
                f"{url}/v1beta/models/gemini-2.5-flash:generateContent",
                headers={"x-goog-api-key": "emulator-gemini-key"},
                json={"contents": [{"role": "user", "parts": [{"text": "hello"}]}]},
                timeout=10,
            )
            assert reply.status_code == 200
            assert reply.json()["usageMetadata"]["promptTokenCount"] == 1
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "Traceback" not in err

    def test_emulator_refuses_a_public_host(self, tmp_path: Path) -> None:
        """The emulator only binds loopback; anything else is bad input, exit 2."""
        done = run([*NEXUS, "emulator", "--host", "0.0.0.0"], tmp_path)  # noqa: S104
        assert done.returncode == 2
        assert "loopback" in done.stderr

    def test_emulator_port_taken_exits_3(self, tmp_path: Path, emulator: Emulator) -> None:
        """A port already in use is a dependency failure, exit 3, in one line."""
        done = run([*NEXUS, "emulator", "--port", str(emulator.port)], tmp_path)
        assert done.returncode == 3
        assert str(emulator.port) in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


class TestEnvironmentChoice:
    def test_nexus_env_local_alone_never_starts_the_emulator(self, tmp_path: Path) -> None:
        """NEXUS_ENV=local is a label: without --env local, smoke calls the configured provider."""
        done = run(
            [*NEXUS, "smoke", "--prompt", "hi", "--purpose", "ops"],
            tmp_path,
            NEXUS_ENV="local",
            GEMINI_API_KEY="k-123456",
            GEMINI_BASE_URL="http://127.0.0.1:9",
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "EMULATOR" not in done.stdout
        assert "connection" in done.stdout

    def test_empty_prompt_is_bad_input(self, tmp_path: Path) -> None:
        """An empty --prompt exits 2 instead of sending nothing."""
        done = run(
            [*NEXUS, "smoke", "--prompt", " ", "--purpose", "ops", "--env", "local"], tmp_path
        )
        assert done.returncode == 2
        assert "--prompt is empty" in done.stderr

    def test_non_ascii_key_is_a_config_error(self, tmp_path: Path) -> None:
        """A key HTTP cannot carry is refused up front, without echoing it."""
        done = run(
            [*NEXUS, "smoke", "--prompt", "hi", "--purpose", "ops"],
            tmp_path,
            GEMINI_API_KEY="ключ-secret",
        )
        assert done.returncode == 2
        assert "GEMINI_API_KEY" in done.stderr
        assert "ключ" not in done.stderr

    @pytest.mark.parametrize("provider", ["gemini", "openai", "anthropic", "glm"])
    def test_local_smoke_passes_for_each_provider(self, tmp_path: Path, provider: str) -> None:
        """`nexus smoke --env local --provider X` passes for each of the four providers."""
        done = run(
            [
                *NEXUS,
                "smoke",
                "--prompt",
                "hi",
                "--purpose",
                "ops",
                "--env",
                "local",
                "--provider",
                provider,
            ],
            tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"[OK] call         {provider}/" in done.stdout

    def test_unpriced_model_is_named(self, tmp_path: Path) -> None:
        """A model missing from the price table makes the ledger check NG with that reason."""
        done = run(
            [*NEXUS, "smoke", "--prompt", "hi", "--purpose", "ops", "--env", "local"],
            tmp_path,
            GEMINI_MODEL="gemini-9-experimental",
        )
        assert done.returncode == 1
        assert "not in the price table" in done.stdout
        assert "LLM_PRICES_PATH" in done.stdout

    def test_proxy_variables_never_carry_emulator_traffic(self, tmp_path: Path) -> None:
        """HTTP(S)_PROXY does not apply to loopback: the local smoke still passes."""
        proxy = "http://127.0.0.1:9"
        done = run(
            [*NEXUS, "smoke", "--prompt", "hi", "--purpose", "ops", "--env", "local"],
            tmp_path,
            HTTP_PROXY=proxy,
            HTTPS_PROXY=proxy,
            ALL_PROXY=proxy,
        )
        assert done.returncode == 0, done.stdout + done.stderr
