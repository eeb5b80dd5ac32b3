"""Client and AsyncClient over httpx.MockTransport: what a call returns and leaves on disk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from nexus_llm import AsyncClient, Client, tags
from nexus_llm.config import Settings
from nexus_llm.errors import (
    AuthenticationError,
    MalformedResponseError,
    NoProviderAvailableError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from nexus_llm.observe.pricing import estimate_tokens
from nexus_llm.types import Message, Response
from tests.support import GEMINI_KEY_INVALID_BODY

FAKE_KEY = "AIzaFAKE-unit-test-key-7f3c9e"
PROMPT = "Summarise the incident report for ticket SECRET-PROMPT-4711."
MODEL = "gemini-2.5-flash"
GENERATE_URL = f"https://generativelanguage.googleapis.com/v1beta/models/{MODEL}:generateContent"

Handler = Callable[[httpx.Request], httpx.Response]

OK_BODY: dict[str, object] = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "All systems nominal."}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 400,
        "candidatesTokenCount": 120,
        "thoughtsTokenCount": 80,
        "totalTokenCount": 1200,
    },
    "modelVersion": MODEL,
    "responseId": "resp-1",
}
# (600 * 0.30 + 400 * 0.03 + (120 + 80) * 2.50) / 1e6
OK_COST = (600 * 0.30 + 400 * 0.03 + 200 * 2.50) / 1_000_000


def _settings(tmp_path: Path, **extra: str) -> Settings:
    env = {
        "LLM_AUDIT_LOG_PATH": str(tmp_path / "logs" / "audit.jsonl"),
        "LLM_COST_LEDGER_PATH": str(tmp_path / "logs" / "ledger.jsonl"),
        "GEMINI_API_KEY": FAKE_KEY,
        "LLM_PROVIDER_ORDER": "gemini",
        # These tests look at one call at a time; dedupe and retries have their own suites.
        "LLM_DEDUPE": "false",
        "LLM_RETRY_MAX_ATTEMPTS": "1",
        "NEXUS_ENV": "unit",
        "LLM_DEFAULT_TEAM": "platform",
        "LLM_DEFAULT_PROJECT": "core",
    }
    env.update(extra)
    return Settings.from_env(env)


def _records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _audit(settings: Settings) -> list[dict[str, object]]:
    return _records(settings.audit_log_path)


def _ledger(settings: Settings) -> list[dict[str, object]]:
    return _records(settings.cost_ledger_path)


def _reply(body: object, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return handler


class Recorded:
    """A MockTransport handler that remembers every request it answered."""

    def __init__(self, body: object, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self._body = body
        self._status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self._status, json=self._body)


def _call(settings: Settings, handler: Handler, **kwargs: object) -> Response:
    with Client(settings, transport=httpx.MockTransport(handler)) as client:
        return client.generate(**kwargs)  # type: ignore[arg-type]


class TestSuccess:
    """A 200 answer: the Response, the audit line and the ledger line."""

    def test_response_audit_and_ledger(self, tmp_path: Path) -> None:
        """One call gives a Response, one llm_success event and one ledger line that agree."""
        settings = _settings(tmp_path)
        handler = Recorded(OK_BODY)
        with Client(settings, transport=httpx.MockTransport(handler)) as client:
            response = client.generate(PROMPT, purpose="triage")

        assert response.text == "All systems nominal."
        assert response.provider == "gemini"
        assert response.model == MODEL
        assert response.finish_reason == "STOP"
        assert response.response_id == "resp-1"
        assert response.usage.input_tokens == 1000
        assert response.usage.output_tokens == 200
        assert response.approx_tokens is False
        assert response.cost_usd == pytest.approx(OK_COST)
        assert (response.team, response.project, response.purpose) == ("platform", "core", "triage")

        (event,) = _audit(settings)
        assert event["event"] == "llm_success"
        assert event["request_id"] == response.request_id
        assert event["env"] == "unit"
        assert (event["provider"], event["model"], event["status"]) == ("gemini", MODEL, 200)
        assert (event["team"], event["project"], event["purpose"]) == ("platform", "core", "triage")
        assert (event["input_tokens"], event["output_tokens"]) == (1000, 200)
        assert (event["cached_tokens"], event["reasoning_tokens"]) == (400, 80)
        assert event["cost_usd"] == pytest.approx(OK_COST)
        assert event["finish_reason"] == "STOP"
        assert str(event["ts"]).endswith("Z")

        (line,) = _ledger(settings)
        assert line["request_id"] == response.request_id
        assert (line["input_tokens"], line["output_tokens"]) == (1000, 200)
        assert (line["cached_tokens"], line["reasoning_tokens"]) == (400, 80)
        assert line["actual_cost_usd"] == pytest.approx(OK_COST)
        assert line["approx_tokens"] is False
        assert line["dedupe_hit"] is False
        assert line["saved_cost_usd"] == 0.0
        assert line["price_version"] == response.price_version
        assert (line["team"], line["project"], line["purpose"]) == ("platform", "core", "triage")
        assert line["env"] == "unit"

    def test_request_on_the_wire(self, tmp_path: Path) -> None:
        """The HTTP request goes to generateContent with the key header and the camelCase body."""
        handler = Recorded(OK_BODY)
        _call(
            _settings(tmp_path),
            handler,
            messages=[("user", "hi"), Message("assistant", "hello"), ("user", "status?")],
            system="Be terse.",
            temperature=0.1,
            max_tokens=64,
            json_mode=True,
        )
        (request,) = handler.requests
        assert str(request.url) == GENERATE_URL
        assert request.method == "POST"
        assert request.headers["x-goog-api-key"] == FAKE_KEY
        body = json.loads(request.content)
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
        assert body["generationConfig"] == {
            "temperature": 0.1,
            "maxOutputTokens": 64,
            "responseMimeType": "application/json",
        }

    def test_model_argument_is_used_and_priced(self, tmp_path: Path) -> None:
        """model= picks the URL's model and the price row."""
        settings = _settings(tmp_path)
        handler = Recorded({**OK_BODY, "modelVersion": "gemini-2.5-pro"})
        with Client(settings, transport=httpx.MockTransport(handler)) as client:
            response = client.generate("hi", model="gemini-2.5-pro")
        assert "/models/gemini-2.5-pro:generateContent" in str(handler.requests[0].url)
        expected = (600 * 1.25 + 400 * 0.125 + 200 * 10.0) / 1_000_000
        assert response.cost_usd == pytest.approx(expected)
        assert _ledger(settings)[0]["model"] == "gemini-2.5-pro"

    def test_tags_reach_the_files(self, tmp_path: Path) -> None:
        """A tags() block and explicit arguments land in the audit event and the ledger."""
        settings = _settings(tmp_path)
        with (
            Client(settings, transport=httpx.MockTransport(_reply(OK_BODY))) as client,
            tags(team="ops", project="finops", purpose="report"),
        ):
            client.generate("a")
            client.generate("b", team="sre")
        ledger = _ledger(settings)
        assert [(r["team"], r["project"], r["purpose"]) for r in ledger] == [
            ("ops", "finops", "report"),
            ("sre", "finops", "report"),
        ]
        assert [r["team"] for r in _audit(settings)] == ["ops", "sre"]

    def test_no_usage_is_estimated(self, tmp_path: Path) -> None:
        """Without usageMetadata the ledger says approx_tokens and holds estimated tokens > 0."""
        settings = _settings(tmp_path)
        body = {k: v for k, v in OK_BODY.items() if k != "usageMetadata"}
        response = _call(settings, _reply(body), prompt=PROMPT)
        (line,) = _ledger(settings)
        assert line["approx_tokens"] is True
        assert line["input_tokens"] == estimate_tokens(PROMPT) > 0
        assert line["output_tokens"] == estimate_tokens("All systems nominal.") > 0
        assert float(str(line["actual_cost_usd"])) > 0
        assert response.approx_tokens is True
        assert _audit(settings)[0]["approx_tokens"] is True

    def test_unpriced_model_is_flagged(self, tmp_path: Path) -> None:
        """A model missing from the price table costs 0 and the ledger says priced false."""
        settings = _settings(tmp_path, GEMINI_MODEL="gemini-99-experimental")
        _call(settings, _reply(OK_BODY), prompt="hi")
        (line,) = _ledger(settings)
        assert line["actual_cost_usd"] == 0.0
        assert line["priced"] is False


AUDIT_CALL_FIELDS = {
    "ts",
    "event",
    "request_id",
    "env",
    "provider",
    "model",
    "purpose",
    "team",
    "project",
    "latency_ms",
    "attempt",
    "status",
}


class TestAuditShape:
    """Call events carry the DESIGN §4.2 fields."""

    def test_success_and_error_events_have_design_fields(self, tmp_path: Path) -> None:
        """llm_success and llm_error both carry every common call field; errors add error_type."""
        settings = _settings(tmp_path)
        _call(settings, _reply(OK_BODY), prompt="hi")
        with pytest.raises(AuthenticationError):
            _call(settings, _reply(GEMINI_KEY_INVALID_BODY, status=400), prompt="hi")
        success, error = _audit(settings)
        assert set(success) >= AUDIT_CALL_FIELDS | {"input_tokens", "output_tokens", "cost_usd"}
        assert set(error) >= AUDIT_CALL_FIELDS | {"error_type"}
        for event in (success, error):
            assert event["attempt"] == 1
            assert isinstance(event["latency_ms"], int | float)
            assert float(event["latency_ms"]) >= 0
        assert success["request_id"] != error["request_id"]


class TestThreadSafety:
    """One Client shared by threads."""

    def test_threads_share_one_client(self, tmp_path: Path) -> None:
        """8 threads x 25 calls on one Client give 200 ledger lines with distinct request ids."""
        settings = _settings(tmp_path)
        with (
            Client(settings, transport=httpx.MockTransport(_reply(OK_BODY))) as client,
            ThreadPoolExecutor(max_workers=8) as pool,
        ):
            futures = [
                pool.submit(client.generate, f"prompt {n}", team=f"team-{n % 8}")
                for n in range(200)
            ]
            ids = {f.result(timeout=30).request_id for f in futures}
        ledger = _ledger(settings)
        assert len(ids) == 200
        assert {str(line["request_id"]) for line in ledger} == ids
        assert len(_audit(settings)) == 200


class TestFailures:
    """Errors raise typed exceptions with a request_id and leave an llm_error event."""

    def test_invalid_key(self, tmp_path: Path) -> None:
        """400 API_KEY_INVALID raises AuthenticationError; llm_error "auth"; no ledger line."""
        settings = _settings(tmp_path)
        with pytest.raises(AuthenticationError) as caught:
            _call(settings, _reply(GEMINI_KEY_INVALID_BODY, status=400), prompt=PROMPT)
        error = caught.value
        assert error.request_id
        assert FAKE_KEY not in str(error)
        (event,) = _audit(settings)
        assert event["event"] == "llm_error"
        assert event["error_type"] == "auth"
        assert event["status"] == 400
        assert event["retryable"] is False
        assert event["request_id"] == error.request_id
        assert _ledger(settings) == []

    def test_rate_limit_keeps_hint(self, tmp_path: Path) -> None:
        """A 429 raises RateLimitError and the audit event keeps retry_after_s."""
        settings = _settings(tmp_path)
        body = {
            "error": {
                "code": 429,
                "message": "Quota exceeded.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
                ],
            }
        }
        with pytest.raises(RateLimitError) as caught:
            _call(settings, _reply(body, status=429), prompt="hi")
        assert caught.value.retry_after_s == 7.0
        (event,) = _audit(settings)
        assert (event["error_type"], event["retry_after_s"], event["retryable"]) == (
            "rate_limit",
            7.0,
            True,
        )

    def test_overloaded(self, tmp_path: Path) -> None:
        """A 503 raises OverloadedError and leaves no ledger line."""
        settings = _settings(tmp_path)
        body = {
            "error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
        }
        with pytest.raises(OverloadedError):
            _call(settings, _reply(body, status=503), prompt="hi")
        assert _audit(settings)[0]["error_type"] == "overloaded"
        assert _ledger(settings) == []

    @pytest.mark.parametrize(
        ("exc", "expected", "error_type"),
        [
            (
                httpx.ConnectError("[Errno 111] Connection refused"),
                ProviderConnectionError,
                "connection",
            ),
            (httpx.ReadTimeout("timed out"), ProviderTimeoutError, "timeout"),
            (httpx.ConnectTimeout("connect timed out"), ProviderTimeoutError, "timeout"),
            (httpx.RemoteProtocolError("peer closed"), ProviderConnectionError, "connection"),
        ],
    )
    def test_transport_failures(
        self,
        tmp_path: Path,
        exc: httpx.HTTPError,
        expected: type[Exception],
        error_type: str,
    ) -> None:
        """A transport exception becomes a retryable typed error with an llm_error event."""
        settings = _settings(tmp_path)

        def handler(request: httpx.Request) -> httpx.Response:
            raise exc

        with pytest.raises(expected) as caught:
            _call(settings, handler, prompt="hi")
        assert getattr(caught.value, "retryable", None) is True
        assert getattr(caught.value, "request_id", None)
        (event,) = _audit(settings)
        assert event["event"] == "llm_error"
        assert event["error_type"] == error_type
        assert event["status"] is None
        assert _ledger(settings) == []

    def test_no_provider_names_each_and_why(self, tmp_path: Path) -> None:
        """With no usable provider the error names every provider and the reason it was skipped."""
        settings = _settings(
            tmp_path, GEMINI_API_KEY="", LLM_PROVIDER_ORDER="gemini,openai,anthropic,glm"
        )
        handler = Recorded(OK_BODY)
        with pytest.raises(NoProviderAvailableError) as caught:
            _call(settings, handler, prompt="hi")
        message = str(caught.value)
        for name in ("gemini", "openai", "anthropic", "glm"):
            assert f"{name}:" in message
        assert "gemini: no API key configured" in message
        assert dict(caught.value.reasons)["gemini"] == "no API key configured"
        assert caught.value.request_id
        assert handler.requests == []
        assert _ledger(settings) == []

    def test_keys_are_never_in_the_no_provider_error(self, tmp_path: Path) -> None:
        """When every provider lacks a key the error says so per provider, leaking nothing."""
        settings = _settings(
            tmp_path, GEMINI_API_KEY="", OPENAI_BASE_URL="https://sk-in-url.example.invalid"
        )
        with pytest.raises(NoProviderAvailableError) as caught:
            _call(settings, _reply(OK_BODY), prompt="hi")
        assert "gemini: no API key configured" in str(caught.value)
        assert "sk-in-url" not in str(caught.value)


class TestRobustness:
    """What the client does at the edges."""

    def test_unknown_provider_argument(self, tmp_path: Path) -> None:
        """provider= naming an unknown provider raises NoProviderAvailableError saying so."""
        handler = Recorded(OK_BODY)
        with pytest.raises(NoProviderAvailableError) as caught:
            _call(_settings(tmp_path), handler, prompt="hi", provider="mistral")
        assert "mistral: unknown provider" in str(caught.value)
        assert handler.requests == []

    def test_non_json_success_is_malformed(self, tmp_path: Path) -> None:
        """A 200 with an HTML body raises MalformedResponseError and records it."""
        settings = _settings(tmp_path)

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, text="<html>captive portal</html>")

        with pytest.raises(MalformedResponseError):
            _call(settings, handler, prompt="hi")
        assert _audit(settings)[0]["error_type"] == "malformed_response"
        assert _ledger(settings) == []

    def test_unusable_base_url_is_a_provider_error(self, tmp_path: Path) -> None:
        """A base URL httpx cannot use fails as a typed ProviderError, not a raw httpx error."""
        settings = _settings(tmp_path).with_provider("gemini", base_url="https://host:notaport")
        with pytest.raises(ProviderError) as caught:
            _call(settings, _reply(OK_BODY), prompt="hi")
        assert caught.value.request_id
        assert _audit(settings)[0]["event"] == "llm_error"

    def test_unwritable_files_do_not_fail_the_call(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """When the audit log and ledger cannot be written, the answer still comes back."""
        blocked = tmp_path / "blocked"
        blocked.mkdir()
        settings = _settings(
            tmp_path, LLM_AUDIT_LOG_PATH=str(blocked), LLM_COST_LEDGER_PATH=str(blocked)
        )
        with caplog.at_level("ERROR", logger="nexus_llm"):
            response = _call(settings, _reply(OK_BODY), prompt="hi")
        assert response.text == "All systems nominal."
        assert "could not write" in caplog.text
        assert FAKE_KEY not in caplog.text


class TestSecretsAndPrompts:
    """Prompts stay out of the files by default; keys always."""

    def test_prompt_and_key_not_logged_by_default(self, tmp_path: Path) -> None:
        """Neither file contains the prompt text or the key; the audit has hash and length."""
        settings = _settings(tmp_path)
        _call(settings, _reply(OK_BODY), prompt=PROMPT, system="SYSTEM-SECRET-TEXT")
        with pytest.raises(AuthenticationError):
            _call(settings, _reply(GEMINI_KEY_INVALID_BODY, status=400), prompt=PROMPT)
        audit_text = settings.audit_log_path.read_text("utf-8")
        ledger_text = settings.cost_ledger_path.read_text("utf-8")
        for text in (audit_text, ledger_text):
            assert "SECRET-PROMPT-4711" not in text
            assert "SYSTEM-SECRET-TEXT" not in text
            assert FAKE_KEY not in text
        events = _audit(settings)
        assert [e["event"] for e in events] == ["llm_success", "llm_error"]
        for event in events:
            assert "prompt" not in event
            assert len(str(event["prompt_sha256"])) >= 16
        assert events[0]["prompt_chars"] == len("SYSTEM-SECRET-TEXT\n" + PROMPT)
        assert events[1]["prompt_chars"] == len(PROMPT)

    def test_same_prompt_same_hash(self, tmp_path: Path) -> None:
        """The prompt hash is stable for the same prompt and differs for another one."""
        settings = _settings(tmp_path)
        for prompt in (PROMPT, PROMPT, PROMPT + "!"):
            _call(settings, _reply(OK_BODY), prompt=prompt)
        hashes = [e["prompt_sha256"] for e in _audit(settings)]
        assert hashes[0] == hashes[1] != hashes[2]

    def test_opt_in_logs_prompt_in_audit_only(self, tmp_path: Path) -> None:
        """With LLM_LOG_PROMPTS=true the prompt is in the audit log but not the ledger."""
        settings = _settings(tmp_path, LLM_LOG_PROMPTS="true")
        _call(settings, _reply(OK_BODY), prompt=PROMPT)
        (event,) = _audit(settings)
        assert event["prompt"] == PROMPT
        ledger_text = settings.cost_ledger_path.read_text("utf-8")
        assert "SECRET-PROMPT-4711" not in ledger_text
        assert FAKE_KEY not in settings.audit_log_path.read_text("utf-8")


class TestArguments:
    """Bad arguments raise ValueError before any request is sent."""

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({}, "exactly one"),
            ({"prompt": "a", "messages": [("user", "b")]}, "exactly one"),
            ({"messages": []}, "at least one"),
            ({"messages": [("system", "b")]}, "role"),
            ({"prompt": "a", "temperature": -0.1}, "temperature"),
            ({"prompt": "a", "temperature": 2.01}, "temperature"),
            ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
            ({"prompt": "a", "max_tokens": -5}, "max_tokens"),
        ],
    )
    def test_invalid_arguments(self, tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
        """Each invalid combination raises ValueError naming the problem; nothing is sent."""
        settings = _settings(tmp_path)
        handler = Recorded(OK_BODY)
        with pytest.raises(ValueError, match=match):
            _call(settings, handler, **kwargs)
        assert handler.requests == []
        assert _audit(settings) == []

    @pytest.mark.parametrize("temperature", [0.0, 2.0])
    def test_temperature_bounds_are_inclusive(self, tmp_path: Path, temperature: float) -> None:
        """Temperatures 0.0 and 2.0 are accepted."""
        handler = Recorded(OK_BODY)
        _call(_settings(tmp_path), handler, prompt="a", temperature=temperature)
        assert json.loads(handler.requests[0].content)["generationConfig"] == {
            "temperature": temperature
        }


def _comparable(records: list[dict[str, object]]) -> list[dict[str, object]]:
    drop = {"ts", "request_id", "latency_ms"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


class TestAsyncClient:
    """AsyncClient drives the same pipeline and leaves the same files."""

    def test_sync_and_async_leave_the_same_records(self, tmp_path: Path) -> None:
        """The same success and failure calls through both shells give equal records."""
        sync_settings = _settings(tmp_path / "sync")
        async_settings = _settings(tmp_path / "async")

        def sync_handler(request: httpx.Request) -> httpx.Response:
            body = GEMINI_KEY_INVALID_BODY if b"fail" in request.content else OK_BODY
            return httpx.Response(400 if body is GEMINI_KEY_INVALID_BODY else 200, json=body)

        async def async_handler(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0)
            return sync_handler(request)

        with Client(sync_settings, transport=httpx.MockTransport(sync_handler)) as client:
            sync_response = client.generate(PROMPT, purpose="compare", team="ops")
            with pytest.raises(AuthenticationError):
                client.generate("please fail", purpose="compare")

        async def run() -> Response:
            async with AsyncClient(
                async_settings, transport=httpx.MockTransport(async_handler)
            ) as aclient:
                response = await aclient.generate(PROMPT, purpose="compare", team="ops")
                with pytest.raises(AuthenticationError):
                    await aclient.generate("please fail", purpose="compare")
                return response

        async_response = asyncio.run(run())

        sync_audit, async_audit = _audit(sync_settings), _audit(async_settings)
        assert [e["event"] for e in sync_audit] == ["llm_success", "llm_error"]
        assert _comparable(sync_audit) == _comparable(async_audit)
        assert len(_ledger(sync_settings)) == 1
        assert _comparable(_ledger(sync_settings)) == _comparable(_ledger(async_settings))
        assert async_response.text == sync_response.text
        assert async_response.cost_usd == sync_response.cost_usd

    def test_async_tags_follow_tasks(self, tmp_path: Path) -> None:
        """Concurrent async calls in different tags() blocks are recorded with their own tags."""
        settings = _settings(tmp_path)

        async def handler(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0)
            return httpx.Response(200, json=OK_BODY)

        async def run() -> None:
            async with AsyncClient(settings, transport=httpx.MockTransport(handler)) as aclient:

                async def one(n: int) -> str:
                    with tags(team=f"team-{n}"):
                        return (await aclient.generate(f"prompt {n}")).request_id

                ids = await asyncio.gather(*(one(n) for n in range(10)))
                assert len(set(ids)) == 10

        asyncio.run(run())
        teams = sorted(str(line["team"]) for line in _ledger(settings))
        assert teams == sorted(f"team-{n}" for n in range(10))

    def test_async_transport_failure(self, tmp_path: Path) -> None:
        """An async handler raising ConnectError gives ProviderConnectionError."""
        settings = _settings(tmp_path)

        async def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused")

        async def run() -> None:
            async with AsyncClient(settings, transport=httpx.MockTransport(handler)) as aclient:
                await aclient.generate("hi")

        with pytest.raises(ProviderConnectionError):
            asyncio.run(run())
        assert _audit(settings)[0]["error_type"] == "connection"
