"""`Client` over each sender (urllib3, httpx) against the emulator on 127.0.0.1.

The rest of the suite runs `Client` with ``http_backend="auto"`` (urllib3 when the ``fast`` extra
is installed, as in CI); these tests hold both senders to the same behaviour, so the httpx one —
the base install's — is exercised as much where it matters.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import nexus_llm
from nexus_llm import Client, Response
from nexus_llm.emulator import Emulator
from nexus_llm.errors import (
    AuthenticationError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
)
from nexus_llm.sync_transports import HttpxSyncSender, Urllib3Sender, urllib3_available
from tests.integration.test_client_over_http import FAULTS, lines, settings_for
from tests.support import emulator_settings

BACKENDS = [
    "httpx",
    pytest.param(
        "urllib3",
        marks=pytest.mark.skipif(not urllib3_available(), reason="urllib3 is not installed"),
    ),
]
SENDERS = {"httpx": HttpxSyncSender, "urllib3": Urllib3Sender}
PROMPT = "Summarise the incident: the disk filled up at noon and the queue stalled."


@pytest.mark.parametrize("backend", BACKENDS)
class TestClientTransport:
    def test_success_writes_both_files(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """A call over this sender returns the emulator's text and usage and writes both
        files; two calls share one kept-alive connection's worth of requests."""
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings, http_backend=backend) as client:  # type: ignore[arg-type]
            assert isinstance(client._sender, SENDERS[backend])
            reply = client.generate("Summarise: the disk is full.", purpose="ops", team="sre")
            again = client.generate("Summarise: the disk is full.", purpose="ops", team="sre")
        assert reply.text.startswith("Emulated gemini reply")
        assert again.text == reply.text
        assert reply.usage.input_tokens == 7
        assert [e["event"] for e in lines(settings.audit_log_path)] == ["llm_success"] * 2
        assert lines(settings.cost_ledger_path)[0]["team"] == "sre"
        assert fresh_emulator.request_count("gemini") == 2

    @pytest.mark.parametrize(("kind", "error", "error_type"), FAULTS)
    def test_fault_becomes_a_typed_error(
        self,
        fresh_emulator: Emulator,
        tmp_path: Path,
        backend: str,
        kind: str,
        error: type[ProviderError],
        error_type: str,
    ) -> None:
        """Each injected fault (reset and truncated body included) is its typed error, and
        the same client's next call succeeds (a broken connection never goes back to a pool)."""
        fresh_emulator.inject("gemini", kind, times=1, retry_after_s=1.5)
        settings = settings_for(fresh_emulator, tmp_path)
        with Client(settings, http_backend=backend) as client:  # type: ignore[arg-type]
            with pytest.raises(error) as caught:
                client.generate("hello", purpose="ops")
            assert client.generate("hello", purpose="ops").text
        assert type(caught.value) is error
        assert lines(settings.audit_log_path)[0]["error_type"] == error_type
        assert len(lines(settings.cost_ledger_path)) == 1
        assert fresh_emulator.gemini_key not in settings.audit_log_path.read_text()
        assert fresh_emulator.gemini_key not in str(caught.value)

    def test_timeout_is_a_timeout_error(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """A provider that never answers raises ProviderTimeoutError after LLM_TIMEOUT_S."""
        fresh_emulator.inject("gemini", "timeout", times=1)
        settings = settings_for(fresh_emulator, tmp_path, LLM_TIMEOUT_S="0.3")
        with (
            Client(settings, http_backend=backend) as client,  # type: ignore[arg-type]
            pytest.raises(ProviderTimeoutError),
        ):
            client.generate("hello", purpose="ops")

    def test_nothing_listening_is_a_connection_error(self, tmp_path: Path, backend: str) -> None:
        """A refused connection is ProviderConnectionError (urllib3 files it under a timeout
        class; it is not one), and the message names no key."""
        settings = nexus_llm.Settings.from_env(
            {
                "LLM_PROVIDER_ORDER": "gemini",
                "GEMINI_API_KEY": "sk-never-shown",
                "GEMINI_BASE_URL": "http://127.0.0.1:9",
                "LLM_RETRY_MAX_ATTEMPTS": "1",
                "LLM_AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"),
                "LLM_COST_LEDGER_PATH": str(tmp_path / "ledger.jsonl"),
                "LLM_STATE_PATH": str(tmp_path / "state.sqlite3"),
            }
        )
        with (
            Client(settings, http_backend=backend) as client,  # type: ignore[arg-type]
            pytest.raises(ProviderConnectionError) as caught,
        ):
            client.generate("hello", purpose="ops")
        assert "sk-never-shown" not in str(caught.value)

    def test_threads_share_one_client(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """8 threads × 25 calls on one Client: every call answered, each ledger line tagged
        with its own thread's team."""
        settings = settings_for(fresh_emulator, tmp_path)
        results: dict[str, str] = {}
        errors: list[BaseException] = []

        def worker(n: int, client: Client) -> None:
            try:
                for i in range(25):
                    reply = client.generate(f"question {n} {i}", purpose="load", team=f"t{n}")
                    results[reply.request_id] = f"t{n}"
            except BaseException as exc:  # collected: a thread's failure must fail the test
                errors.append(exc)

        with Client(settings, http_backend=backend) as client:  # type: ignore[arg-type]
            threads = [threading.Thread(target=worker, args=(n, client)) for n in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert errors == []
        by_id = {line["request_id"]: line["team"] for line in lines(settings.cost_ledger_path)}
        assert by_id == results
        assert len(by_id) == 200
        assert fresh_emulator.request_count("gemini") == 200


@pytest.mark.parametrize("backend", BACKENDS)
class TestStreamTransport:
    @pytest.mark.parametrize("provider", ["gemini", "anthropic"])
    def test_stream_equals_the_unary_answer(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str, provider: str
    ) -> None:
        """The streamed text and usage equal the unary call's, one word per event."""
        settings = emulator_settings(fresh_emulator, tmp_path, provider)
        with Client(settings, http_backend=backend) as client:  # type: ignore[arg-type]
            unary = client.generate(PROMPT, purpose="ops")
            with client.generate_stream(PROMPT, purpose="ops") as stream:
                pieces = list(stream)
        assert len(pieces) > 3
        assert "".join(pieces) == unary.text
        assert stream.response.usage == unary.usage
        assert len(lines(settings.cost_ledger_path)) == 2

    def test_leaving_early_keeps_the_client_usable(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """A stream left after its first text is billed once as cancelled; its half-read
        connection is closed, so the next calls on the same client get whole answers."""
        settings = emulator_settings(fresh_emulator, tmp_path, "openai")
        with Client(settings, http_backend=backend) as client:  # type: ignore[arg-type]
            for _ in range(3):
                with client.generate_stream(PROMPT, purpose="ops") as stream:
                    assert next(iter(stream))
                assert stream.response.finish_reason == "cancelled"
                whole: Response = client.generate(PROMPT, purpose="ops")
                assert whole.text.endswith(".")
        finishes = [line["approx_tokens"] for line in lines(settings.cost_ledger_path)]
        assert finishes == [True, False] * 3

    def test_cut_and_refused_streams_are_typed(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """A stream cut after text is a typed error marked after_output (never retried); a 401
        before any text is AuthenticationError, its body read whole."""
        settings = emulator_settings(fresh_emulator, tmp_path, "gemini")
        with Client(settings, http_backend=backend) as client:  # type: ignore[arg-type]
            fresh_emulator.inject("gemini", "stream_cut", times=1)
            received: list[str] = []
            stream = client.generate_stream(PROMPT, purpose="ops")
            with pytest.raises((MalformedResponseError, ProviderConnectionError)) as cut:
                received.extend(stream)
            stream.close()
            assert received
            assert cut.value.after_output
            fresh_emulator.inject("gemini", "bad_key", times=1)
            refused = client.generate_stream(PROMPT, purpose="ops")
            with pytest.raises(AuthenticationError):
                list(refused)
            refused.close()
