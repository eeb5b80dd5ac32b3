"""`generate_stream` against the emulator over real HTTP: every provider, both clients, and
what happens when a stream fails before or after its first text, or the caller stops early."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pytest

from nexus_llm import AsyncClient, Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.errors import (
    AuthenticationError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
)
from nexus_llm.sync_transports import urllib3_available
from tests.support import emulator_settings, jsonl_lines

PROVIDERS = ["gemini", "openai", "anthropic", "glm"]
PROMPT = "Summarise the incident: the disk filled up at noon and the queue stalled."


def drain(stream: Iterable[str], into: list[str]) -> None:
    """Collect the stream's text until it ends or fails (what arrived stays in `into`)."""
    for text in stream:
        into.append(text)


def logs(tmp_path: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return (
        jsonl_lines(tmp_path / "logs" / "audit.jsonl"),
        jsonl_lines(tmp_path / "logs" / "ledger.jsonl"),
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sync_stream_equals_the_unary_answer_and_writes_one_ledger_line(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    with Client(settings) as client:
        unary = client.generate(PROMPT, purpose="ops")
        with client.generate_stream(PROMPT, purpose="ops", team="sre") as stream:
            parts = list(stream)
        response = stream.response
    assert len(parts) > 1, "the emulator streams in several pieces"
    assert "".join(parts) == response.text == unary.text
    assert response.usage == unary.usage
    assert not response.approx_tokens
    assert response.cost_usd == pytest.approx(unary.cost_usd)
    assert response.finish_reason == unary.finish_reason
    audit, ledger = logs(tmp_path)
    mine = [line for line in ledger if line["request_id"] == response.request_id]
    assert len(mine) == 1
    assert mine[0]["team"] == "sre"
    assert mine[0]["input_tokens"] == unary.usage.input_tokens
    assert mine[0]["output_tokens"] == unary.usage.output_tokens
    success = [e for e in audit if e["event"] == "llm_success"]
    assert [e["request_id"] for e in success] == [unary.request_id, response.request_id]
    assert fresh_emulator.request_count(provider) == 2


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_stream_equals_the_sync_one(
    fresh_emulator: Emulator,
    tmp_path: Path,
    provider: str,
    backend: Literal["httpx", "aiohttp"],
) -> None:
    pytest.importorskip(backend)
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    with Client(settings) as client:
        unary = client.generate(PROMPT, purpose="ops")

    async def stream_once() -> tuple[list[str], int, int]:
        async with AsyncClient(settings, http_backend=backend) as client:
            async with client.generate_stream(PROMPT, purpose="ops") as stream:
                parts = [text async for text in stream]
            usage = stream.response.usage
            return parts, usage.input_tokens, usage.output_tokens

    parts, input_tokens, output_tokens = asyncio.run(stream_once())
    assert "".join(parts) == unary.text
    assert (input_tokens, output_tokens) == (unary.usage.input_tokens, unary.usage.output_tokens)
    assert len(logs(tmp_path)[1]) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failure_before_the_first_text_is_retried(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    settings = emulator_settings(
        fresh_emulator, tmp_path, provider, LLM_RETRY_MAX_ATTEMPTS="2", LLM_RETRY_BASE_S="0.01"
    )
    fresh_emulator.inject(provider, "server_error", times=1)
    with Client(settings) as client, client.generate_stream(PROMPT, purpose="ops") as stream:
        text = "".join(stream)
    assert text == stream.response.text
    audit, ledger = logs(tmp_path)
    assert [e["event"] for e in audit] == ["llm_error", "llm_retry", "llm_success"]
    assert len(ledger) == 1
    assert fresh_emulator.request_count(provider) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_cut_after_text_raises_bills_once_and_does_not_fail_over(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    other = "openai" if provider != "openai" else "gemini"
    prefix = {"openai": "OPENAI", "gemini": "GEMINI"}[other]
    settings = emulator_settings(
        fresh_emulator,
        tmp_path,
        provider,
        LLM_PROVIDER_ORDER=f"{provider},{other}",
        LLM_RETRY_MAX_ATTEMPTS="3",
        **{
            f"{prefix}_API_KEY": fresh_emulator.key_for(other),
            f"{prefix}_BASE_URL": fresh_emulator.base_url_for(other),
        },
    )
    fresh_emulator.inject(provider, "stream_cut", times=1)
    received: list[str] = []
    with Client(settings) as client:
        stream = client.generate_stream(PROMPT, purpose="ops")
        # A body cut inside a chunk is a broken connection to httpx; cut between chunks, a
        # stream without its end marker: either way a typed error, after the text.
        with pytest.raises((MalformedResponseError, ProviderConnectionError)) as caught:
            drain(stream, received)
        stream.close()
    assert received, "some text arrived before the cut"
    assert caught.value.after_output
    assert fresh_emulator.request_count(provider) == 1, "no retry after text was shown"
    assert fresh_emulator.request_count(other) == 0, "no failover after text was shown"
    audit, ledger = logs(tmp_path)
    assert [e["event"] for e in audit] == ["llm_error"]
    [line] = ledger
    assert line["approx_tokens"] is True
    assert line["output_tokens"] > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_in_stream_error_is_typed(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    fresh_emulator.inject(provider, "stream_error", times=1)
    with Client(settings) as client:
        stream = client.generate_stream(PROMPT, purpose="ops")
        with pytest.raises(ProviderError) as caught:
            list(stream)
        stream.close()
    assert type(caught.value) is not ProviderError, "a specific class, not the base"
    assert caught.value.request_id
    assert [e["event"] for e in logs(tmp_path)[0]] == ["llm_error"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_leaving_early_closes_the_stream_and_bills_what_was_generated(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    with Client(settings) as client:
        with client.generate_stream(PROMPT, purpose="ops") as stream:
            first = next(iter(stream))
        assert first
        assert stream.response.finish_reason == "cancelled"
        # The client is still usable: the cut connection did not poison the pool.
        assert client.generate(PROMPT, purpose="ops").text
    audit, ledger = logs(tmp_path)
    cancelled = [e for e in audit if e.get("finish_reason") == "cancelled"]
    assert len(cancelled) == 1
    assert len(ledger) == 2
    assert ledger[0]["approx_tokens"] is True


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_usage_is_estimated(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    fresh_emulator.inject(provider, "omit_usage", times=1)
    with Client(settings) as client, client.generate_stream(PROMPT, purpose="ops") as stream:
        text = "".join(stream)
    assert text
    assert stream.response.approx_tokens
    assert stream.response.usage.output_tokens > 0
    [line] = logs(tmp_path)[1]
    assert line["approx_tokens"] is True


def test_bad_key_fails_over_before_any_text(fresh_emulator: Emulator, tmp_path: Path) -> None:
    settings: Settings = emulator_settings(
        fresh_emulator,
        tmp_path,
        "gemini",
        LLM_PROVIDER_ORDER="gemini,openai",
        OPENAI_API_KEY=fresh_emulator.key_for("openai"),
        OPENAI_BASE_URL=fresh_emulator.base_url_for("openai"),
    )
    fresh_emulator.inject("gemini", "bad_key")
    with Client(settings) as client, client.generate_stream(PROMPT, purpose="ops") as stream:
        text = "".join(stream)
    assert text
    assert stream.response.provider == "openai"
    events = [e["event"] for e in logs(tmp_path)[0]]
    assert events == ["llm_error", "llm_fallback", "llm_success"]
    only_gemini = emulator_settings(fresh_emulator, tmp_path / "2", "gemini")
    with Client(only_gemini) as client:
        stream = client.generate_stream(PROMPT, purpose="ops")
        with pytest.raises(AuthenticationError):
            list(stream)
        stream.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["httpx", "urllib3"])
def test_leaving_a_loop_without_with_closes_at_once_and_never_hangs(
    fresh_emulator: Emulator, tmp_path: Path, backend: Literal["httpx", "urllib3"]
) -> None:
    """`for … : break` with no `with`, over each sync sender: the stream is closed and billed
    when the loop lets go of it (reference counting), not later by the cycle collector — which
    could run inside the HTTP pool's lock and hang the thread on itself."""
    if backend == "urllib3" and not urllib3_available():
        pytest.skip("urllib3 is not installed")
    settings = emulator_settings(fresh_emulator, tmp_path, "openai")
    gc.disable()
    try:
        with Client(settings, http_backend=backend) as client:
            for n in range(1, 41):
                for _text in client.generate_stream(PROMPT, purpose="ops"):
                    break
                assert len(logs(tmp_path)[1]) == n, "billed as soon as the loop let go"
    finally:
        gc.enable()
    threshold = gc.get_threshold()
    gc.set_threshold(50)  # collect often: a collection inside the pool lock used to hang
    try:
        with Client(settings, http_backend=backend) as client:
            for _ in range(300):
                for _text in client.generate_stream(PROMPT, purpose="ops"):
                    break
    finally:
        gc.set_threshold(*threshold)
    assert len(logs(tmp_path)[1]) == 340


def test_response_after_leaving_early_is_the_cancelled_call(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    settings = emulator_settings(fresh_emulator, tmp_path, "anthropic")
    with Client(settings) as client, client.generate_stream(PROMPT, purpose="ops") as stream:
        first = next(iter(stream))
    response = stream.response
    assert response.finish_reason == "cancelled"
    assert response.text == first
    assert response.approx_tokens
    [line] = logs(tmp_path)[1]
    assert line["request_id"] == response.request_id


def test_arguments_generate_stream_does_not_take_are_named(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    settings = emulator_settings(fresh_emulator, tmp_path, "gemini")
    with Client(settings) as client:
        with pytest.raises(TypeError, match=r"generate_stream\(\).*dedupe \(streams skip dedupe\)"):
            client.generate_stream(PROMPT, purpose="ops", dedupe=False)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"generate_stream\(\).*colour"):
            client.generate_stream(PROMPT, colour="red")  # type: ignore[call-arg]


@pytest.mark.parametrize("provider", ["gemini", "anthropic"])
def test_a_cut_stream_bills_the_prompt_tokens_the_provider_already_sent(
    fresh_emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    """Gemini (every chunk) and Anthropic (`message_start`) send the prompt's count before any
    text: a stream cut short bills that count, and estimates only the output."""
    settings = emulator_settings(fresh_emulator, tmp_path, provider)
    with Client(settings) as client:
        unary = client.generate(PROMPT, purpose="ops")
        fresh_emulator.inject(provider, "stream_cut", times=1)
        stream = client.generate_stream(PROMPT, purpose="ops")
        with pytest.raises(ProviderError):
            drain(stream, [])
        stream.close()
        with client.generate_stream(PROMPT, purpose="ops") as early:
            next(iter(early))
    cut, cancelled = logs(tmp_path)[1][1:]
    for line in (cut, cancelled):
        assert line["input_tokens"] == unary.usage.input_tokens
        assert line["approx_tokens"] is True
    assert early.response.usage.input_tokens == unary.usage.input_tokens
