"""Fault injection: each FaultKind, how long faults last, and how they are validated."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from nexus_llm.emulator import Emulator, Fault, FaultKind, emulated_providers

Generate = Callable[..., httpx.Response]


def _details(response: httpx.Response) -> dict[str, dict[str, object]]:
    """Return the error details keyed by the short name of their @type."""
    details = response.json()["error"].get("details", [])
    return {d["@type"].rsplit(".", 1)[-1]: d for d in details}


class TestErrorFaults:
    """Error kinds answer with Gemini's real error envelope, whatever the request."""

    def test_bad_key_rejects_the_right_key(self, emulator: Emulator, generate: Generate) -> None:
        """bad_key answers 400 API_KEY_INVALID even to the correct key."""
        emulator.inject("gemini", FaultKind.BAD_KEY, times=1)
        response = generate()
        assert response.status_code == 400
        assert _details(response)["ErrorInfo"]["reason"] == "API_KEY_INVALID"
        assert generate().status_code == 200

    @pytest.mark.parametrize(
        ("retry_after_s", "delay", "said"), [(2.0, "2s", "2.0s"), (1.5, "1.5s", "1.5s")]
    )
    def test_rate_limit_carries_retry_info(
        self,
        emulator: Emulator,
        generate: Generate,
        retry_after_s: float,
        delay: str,
        said: str,
    ) -> None:
        """rate_limit is 429 RESOURCE_EXHAUSTED with QuotaFailure, Help and RetryInfo."""
        emulator.inject("gemini", "rate_limit", retry_after_s=retry_after_s)
        response = generate()
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        assert error["message"].endswith(f"Please retry in {said}.")
        details = _details(response)
        assert details["RetryInfo"]["retryDelay"] == delay
        assert float(str(details["RetryInfo"]["retryDelay"]).rstrip("s")) == retry_after_s
        assert set(details) == {"QuotaFailure", "Help", "RetryInfo"}
        assert "PerMinute" in json.dumps(details["QuotaFailure"])

    def test_quota_daily_has_per_day_quota_and_no_retry_info(
        self, emulator: Emulator, generate: Generate
    ) -> None:
        """quota_daily is a 429 whose quotaId says PerDay, with no RetryInfo."""
        emulator.inject("gemini", "quota_daily")
        response = generate()
        assert response.status_code == 429
        details = _details(response)
        assert "RetryInfo" not in details
        violations = details["QuotaFailure"]["violations"]
        assert isinstance(violations, list)
        assert "PerDay" in violations[0]["quotaId"]

    def test_server_error_is_500_internal(self, emulator: Emulator, generate: Generate) -> None:
        """server_error is 500 INTERNAL."""
        emulator.inject("gemini", "server_error")
        response = generate()
        assert response.status_code == 500
        assert response.json()["error"]["status"] == "INTERNAL"

    def test_unavailable_is_503_overloaded(self, emulator: Emulator, generate: Generate) -> None:
        """unavailable is Gemini's 503 'model is overloaded'."""
        emulator.inject("gemini", "unavailable")
        response = generate()
        assert response.status_code == 503
        assert response.json() == {
            "error": {
                "code": 503,
                "message": "The model is overloaded. Please try again later.",
                "status": "UNAVAILABLE",
            }
        }

    def test_error_faults_win_over_a_missing_key(
        self, emulator: Emulator, generate: Generate
    ) -> None:
        """An active fault answers before the key is checked."""
        emulator.inject("gemini", "unavailable", times=1)
        assert generate(key=None).status_code == 503
        assert generate(key=None).status_code == 403


class TestWireFaults:
    """Transport kinds misbehave on the socket itself."""

    def test_slow_delays_then_answers(self, emulator: Emulator, generate: Generate) -> None:
        """slow waits at least delay_s, then answers normally."""
        emulator.inject("gemini", "slow", times=1, delay_s=0.2)
        started = time.monotonic()
        response = generate()
        assert time.monotonic() - started >= 0.2
        assert response.status_code == 200

    def test_timeout_never_answers(self, emulator: Emulator, generate: Generate) -> None:
        """timeout holds the connection until the client gives up."""
        emulator.inject("gemini", "timeout", times=1)
        with pytest.raises(httpx.ReadTimeout):
            generate(timeout=0.3)
        assert generate().status_code == 200

    def test_reset_drops_the_connection(self, emulator: Emulator, generate: Generate) -> None:
        """reset closes the TCP connection without any response."""
        emulator.inject("gemini", "reset", times=1)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            generate()
        assert generate().status_code == 200

    def test_malformed_json_is_200_with_a_broken_body(
        self, emulator: Emulator, generate: Generate
    ) -> None:
        """malformed_json is a complete 200 whose body does not parse."""
        emulator.inject("gemini", "malformed_json", times=1)
        response = generate()
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)

    def test_truncated_stops_short_of_content_length(
        self, emulator: Emulator, client: httpx.Client
    ) -> None:
        """truncated sends fewer body bytes than Content-Length promises, then closes."""
        emulator.inject("gemini", "truncated", times=1)
        with client.stream(
            "POST",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": emulator.gemini_key},
        ) as response:
            assert response.status_code == 200
            assert int(response.headers["content-length"]) > 0
            with pytest.raises(httpx.RemoteProtocolError):
                response.read()

    def test_omit_usage_leaves_out_usage_metadata(
        self, emulator: Emulator, generate: Generate
    ) -> None:
        """omit_usage answers a normal 200 without usageMetadata."""
        emulator.inject("gemini", "omit_usage", times=1)
        body = generate().json()
        assert "usageMetadata" not in body
        assert body["candidates"][0]["finishReason"] == "STOP"
        assert "usageMetadata" in generate().json()


class TestFaultLifetime:
    """How many requests a fault hits, in what order, and how it is counted."""

    def test_times_expires_after_n_requests(self, emulator: Emulator, generate: Generate) -> None:
        """times=N hits exactly the next N requests."""
        emulator.inject("gemini", "server_error", times=2)
        codes = [generate().status_code for _ in range(3)]
        assert codes == [500, 500, 200]
        assert emulator.stats()["faults"] == []

    def test_times_none_lasts_until_cleared(self, emulator: Emulator, generate: Generate) -> None:
        """times=None hits every request until clear_faults()."""
        emulator.inject("gemini", "unavailable")
        assert [generate().status_code for _ in range(3)] == [503, 503, 503]
        emulator.clear_faults("gemini")
        assert generate().status_code == 200

    def test_faults_apply_in_injection_order(self, emulator: Emulator, generate: Generate) -> None:
        """A second fault waits until the first one has run out."""
        emulator.inject("gemini", "rate_limit", times=2)
        emulator.inject("gemini", "server_error", times=1)
        assert [generate().status_code for _ in range(4)] == [429, 429, 500, 200]

    def test_faulted_requests_are_counted(self, emulator: Emulator, generate: Generate) -> None:
        """request_count includes requests answered with a fault."""
        emulator.inject("gemini", "rate_limit", times=1)
        generate()
        generate()
        assert emulator.request_count("gemini") == 2
        assert emulator.request_count() == 2

    def test_stats_list_active_faults(self, emulator: Emulator) -> None:
        """stats() shows counts and each active fault with its remaining times."""
        fault = emulator.inject("gemini", "rate_limit", times=3, retry_after_s=1.5)
        assert fault == Fault("gemini", FaultKind.RATE_LIMIT, 3, 1.5, 1.0)
        assert emulator.stats() == {
            "requests": dict.fromkeys(emulated_providers(), 0),
            "faults": [fault.to_json()],
        }

    def test_reset_clears_faults_knobs_and_counts(
        self, emulator: Emulator, generate: Generate
    ) -> None:
        """reset() returns the emulator to its starting state."""
        emulator.configure("gemini", thoughts_tokens=5)
        generate()
        emulator.inject("gemini", "server_error")
        emulator.reset()
        assert emulator.stats() == {
            "requests": dict.fromkeys(emulated_providers(), 0),
            "faults": [],
        }
        assert "thoughtsTokenCount" not in generate().json()["usageMetadata"]


class TestFaultValidation:
    """Bad fault parameters fail fast with one clear line."""

    @pytest.mark.parametrize(
        ("args", "kwargs", "message"),
        [
            (
                ("mistral", "rate_limit"),
                {},
                "unknown provider 'mistral'; allowed providers: gemini",
            ),
            (("gemini", "explode"), {}, "unknown fault kind 'explode'; allowed kinds: bad_key"),
            (("gemini", "slow"), {"times": 0}, "times must be a positive integer"),
            (("gemini", "slow"), {"delay_s": -1}, "delay_s must be a finite number"),
            (("gemini", "rate_limit"), {"retry_after_s": float("nan")}, "retry_after_s must be"),
        ],
    )
    def test_inject_rejects_bad_parameters(
        self, emulator: Emulator, args: tuple[str, str], kwargs: dict[str, Any], message: str
    ) -> None:
        """inject() raises ValueError naming what was wrong and what is allowed."""
        with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
            emulator.inject(*args, **kwargs)

    def test_configure_rejects_negative_tokens(self, emulator: Emulator) -> None:
        """configure() refuses negative token counts and unknown providers."""
        with pytest.raises(ValueError, match="thoughts_tokens must be an integer >= 0"):
            emulator.configure("gemini", thoughts_tokens=-1)
        with pytest.raises(ValueError, match="allowed providers: gemini"):
            emulator.configure("mistral")
        with pytest.raises(ValueError, match="allowed providers: gemini"):
            emulator.request_count("mistral")
