"""Helpers shared by the project's tests: environments, fake clocks, real redis-servers."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing.context import ForkContext, SpawnContext
from pathlib import Path

import pytest
import redis

from nexus_llm import Settings
from nexus_llm.emulator import Emulator
from nexus_llm.pipeline import Send
from nexus_llm.types import HttpRequest

# Variables that would point a test at a real provider or webhook, or change its settings.
_FOREIGN = (
    "_API_KEY",
    "_BASE_URL",
    "_MODEL",
    "WEBHOOK_URL",
    "LLM_",
    "NEXUS_",
    "ANOMALY_",
    "NOTIFY_PREFER",
)


def clean_environ(**extra: str) -> dict[str, str]:
    """The process environment without any Nexus or provider setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not any(part in k for part in _FOREIGN)}
    env.update(extra)
    return env


# Gemini's real answer to a wrong API key (shared/reference/gemini.md §6).
GEMINI_KEY_INVALID_BODY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    }
}


def require_executable(name: str, *, needed_for: str) -> str:
    """The path of `name` on PATH: without it the test is skipped — or failed when CI is "true".

    A skip on a developer's machine is a convenience; in CI the same skip would hide that the
    pipeline never ran the test, so there a missing tool is a failure.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"`{name}` is not on PATH; it is needed for {needed_for}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: install it instead of skipping)", pytrace=False)
    pytest.skip(reason)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A throw-away `redis-server` on loopback: no persistence, files in `workdir`."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start on a free port the first time, on the same port after `stop`."""
        attempts = 1 if self.port else 3
        for _ in range(attempts):
            if not self.port or attempts > 1:
                self.port = free_port()
            if self._launch():
                return
        log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")

    def stop(self) -> None:
        """Terminate the server and wait for it to exit."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def client(self) -> redis.Redis:
        """A plain client for checking what the server holds."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def _launch(self) -> bool:
        argv = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        with (self.workdir / "redis.log").open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False
            try:
                with self.client() as probe:
                    if probe.ping():
                        return True
            except redis.RedisError:
                time.sleep(0.02)
        self.stop()
        return False


def mp_context() -> ForkContext | SpawnContext:
    """fork where there is one (much faster to start); spawn elsewhere."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def metrics_server(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """Run `nexus metrics serve --port 0 --dir DIR`; yield its URL and, once stopped, stderr.

    The list yielded second is filled with the server's stderr lines after the block ends.
    """
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_nexus_rehearsal.cli",
            "metrics",
            "serve",
            "--port",
            "0",
            "--dir",
            str(directory),
        ],
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        yield next(w for w in banner.split() if w.startswith("http://127.0.0.1:")), stderr
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=20)
        stderr.extend(err.splitlines())


_KEY_VARIABLE = {"gemini": "GEMINI", "openai": "OPENAI", "anthropic": "ANTHROPIC", "glm": "GLM"}


def emulator_settings(emulator: Emulator, tmp_path: Path, provider: str, **extra: str) -> Settings:
    """Settings that send every call to `provider` on the emulator, logs in `tmp_path/logs`.

    Dedupe is off and each fault is seen once (one attempt): these tests count provider
    requests; dedupe and retries have suites of their own. `extra` overrides any variable.
    """
    prefix = _KEY_VARIABLE[provider]
    return Settings.from_env(
        {
            f"{prefix}_API_KEY": emulator.key_for(provider),
            f"{prefix}_BASE_URL": emulator.base_url_for(provider),
            "LLM_PROVIDER_ORDER": provider,
            "LLM_AUDIT_LOG_PATH": str(tmp_path / "logs" / "audit.jsonl"),
            "LLM_COST_LEDGER_PATH": str(tmp_path / "logs" / "ledger.jsonl"),
            "NEXUS_ENV": "test",
            "LLM_DEDUPE": "false",
            "LLM_RETRY_MAX_ATTEMPTS": "1",
            **extra,
        }
    )


def jsonl_lines(path: Path) -> list[dict[str, object]]:
    """Every line of a JSONL file, parsed; no file is no lines."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


SENDER_SECRET = "sk-very-secret-key"  # the key the sender tests send, and look for in errors


def without_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every proxy variable, so `auto` may pick the fast sender."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def send_effect(url: str, headers: dict[str, str] | None = None) -> Send:
    """One Gemini `Send` of `{}` to `url` (with the test key unless `headers` are given)."""
    request = HttpRequest("POST", url, headers or {"x-goog-api-key": SENDER_SECRET}, b"{}")
    return Send(request=request, timeout_s=2.0, provider="gemini")
