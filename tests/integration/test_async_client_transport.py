"""`AsyncClient` over each sender (httpx, aiohttp) against the emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import nexus_llm
from nexus_llm import AsyncClient, Response
from nexus_llm.emulator import Emulator
from nexus_llm.errors import ProviderError, ProviderTimeoutError
from nexus_llm.transports import aiohttp_available
from tests.integration.test_client_over_http import FAULTS, lines, settings_for

BACKENDS = [
    "httpx",
    pytest.param(
        "aiohttp",
        marks=pytest.mark.skipif(not aiohttp_available(), reason="aiohttp is not installed"),
    ),
]


async def _one(settings: nexus_llm.Settings, backend: str, prompt: str) -> Response:
    async with AsyncClient(settings, http_backend=backend) as client:  # type: ignore[arg-type]
        return await client.generate(prompt, purpose="ops", team="sre")


@pytest.mark.parametrize("backend", BACKENDS)
class TestAsyncClientTransport:
    def test_success_writes_both_files(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """A call returns the emulator's text and usage and writes the audit and ledger lines."""
        settings = settings_for(fresh_emulator, tmp_path)
        reply = asyncio.run(_one(settings, backend, "Summarise: the disk is full."))
        assert reply.text.startswith("Emulated gemini reply")
        assert reply.usage.input_tokens == 7
        assert [e["event"] for e in lines(settings.audit_log_path)] == ["llm_success"]
        assert lines(settings.cost_ledger_path)[0]["team"] == "sre"
        assert fresh_emulator.request_count("gemini") == 1

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
        """Each injected fault (reset and truncated body included) is its typed error."""
        fresh_emulator.inject("gemini", kind, times=1, retry_after_s=1.5)
        settings = settings_for(fresh_emulator, tmp_path)
        with pytest.raises(error) as caught:
            asyncio.run(_one(settings, backend, "hello"))
        assert type(caught.value) is error
        audit = lines(settings.audit_log_path)
        assert audit[-1]["error_type"] == error_type
        assert lines(settings.cost_ledger_path) == []
        assert fresh_emulator.gemini_key not in settings.audit_log_path.read_text()
        assert fresh_emulator.gemini_key not in str(caught.value)

    def test_timeout_is_a_timeout_error(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """A provider that never answers raises ProviderTimeoutError after LLM_TIMEOUT_S."""
        fresh_emulator.inject("gemini", "timeout", times=1)
        settings = settings_for(fresh_emulator, tmp_path, LLM_TIMEOUT_S="0.3")
        with pytest.raises(ProviderTimeoutError):
            asyncio.run(_one(settings, backend, "hello"))

    def test_many_concurrent_calls_on_one_loop(
        self, fresh_emulator: Emulator, tmp_path: Path, backend: str
    ) -> None:
        """200 concurrent calls with different tags each write their own, correct ledger line."""
        settings = settings_for(fresh_emulator, tmp_path)

        async def one(client: AsyncClient, n: int) -> str:
            with nexus_llm.tags(team=f"team-{n % 7}"):
                reply = await client.generate(f"question {n}", purpose="load")
            return reply.request_id

        async def main() -> list[str]:
            async with AsyncClient(
                settings,
                http_backend=backend,
                max_connections=50,  # type: ignore[arg-type]
            ) as client:
                return await asyncio.gather(*(one(client, n) for n in range(200)))

        ids = asyncio.run(main())
        by_id = {line["request_id"]: line for line in lines(settings.cost_ledger_path)}
        assert len(by_id) == 200
        assert set(by_id) == set(ids)
        for n, request_id in enumerate(ids):
            assert by_id[request_id]["team"] == f"team-{n % 7}"
        assert fresh_emulator.request_count("gemini") == 200
