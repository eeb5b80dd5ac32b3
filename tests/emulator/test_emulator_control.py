"""The HTTP control endpoint under /_emulator/, as an out-of-process test would drive it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from nexus_llm.emulator import Emulator, emulated_providers

Generate = Callable[..., httpx.Response]


class TestControlEndpoint:
    """Faults, knobs, stats and reset over plain HTTP."""

    def test_stats_over_http(self, client: httpx.Client, generate: Generate) -> None:
        """GET /_emulator/stats returns the stats dict as JSON."""
        generate()
        response = client.get("/_emulator/stats")
        assert response.status_code == 200
        stats = response.json()
        assert stats["requests"]["gemini"] == 1
        assert sum(stats["requests"].values()) == 1  # every other provider: 0
        assert stats["faults"] == []

    def test_post_fault_returns_it_and_applies_it(
        self, client: httpx.Client, generate: Generate
    ) -> None:
        """POST /_emulator/faults answers with the fault and the next requests suffer it."""
        fault = {
            "provider": "gemini",
            "kind": "rate_limit",
            "times": 2,
            "retry_after_s": 1.5,
            "delay_s": 0.5,
        }
        response = client.post("/_emulator/faults", json=fault)
        assert response.status_code == 200
        assert response.json() == fault
        assert [generate().status_code for _ in range(3)] == [429, 429, 200]

    def test_delete_faults_clears_them(self, client: httpx.Client, generate: Generate) -> None:
        """DELETE /_emulator/faults?provider=gemini removes that provider's faults."""
        client.post("/_emulator/faults", json={"provider": "gemini", "kind": "unavailable"})
        response = client.delete("/_emulator/faults", params={"provider": "gemini"})
        assert response.json() == {"cleared": 1}
        assert generate().status_code == 200
        assert client.delete("/_emulator/faults").json() == {"cleared": 0}

    def test_configure_over_http(self, client: httpx.Client, generate: Generate) -> None:
        """POST /_emulator/configure sets the usage knobs."""
        knobs = {"provider": "gemini", "thoughts_tokens": 87, "cached_tokens": 5}
        assert client.post("/_emulator/configure", json=knobs).json() == knobs
        usage = generate(text="one two three four five six").json()["usageMetadata"]
        assert (usage["thoughtsTokenCount"], usage["cachedContentTokenCount"]) == (87, 5)

    def test_reset_over_http(
        self, client: httpx.Client, emulator: Emulator, generate: Generate
    ) -> None:
        """POST /_emulator/reset clears faults, knobs and counts."""
        generate()
        emulator.inject("gemini", "timeout")
        assert client.post("/_emulator/reset").json() == {"reset": True}
        assert emulator.stats() == {
            "requests": dict.fromkeys(emulated_providers(), 0),
            "faults": [],
        }

    def test_control_calls_are_not_counted(self, client: httpx.Client, emulator: Emulator) -> None:
        """Control endpoint traffic is not provider traffic."""
        client.get("/_emulator/stats")
        client.post("/_emulator/reset")
        assert emulator.request_count() == 0

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"provider": "mistral", "kind": "slow"}, "allowed providers: gemini"),
            ({"provider": "gemini", "kind": "boom"}, "allowed kinds: bad_key, rate_limit"),
            ({"provider": "gemini"}, "needs 'provider' and 'kind'"),
            ({"provider": "gemini", "kind": "slow", "times": "2"}, "times must be a positive"),
            ({"provider": "gemini", "kind": "slow", "delay": 1}, "unknown field(s) 'delay'"),
            ([1], "needs a JSON object body"),
        ],
    )
    def test_bad_fault_input_is_400(
        self, client: httpx.Client, emulator: Emulator, body: object, message: str
    ) -> None:
        """Bad fault input is 400 with one line naming the problem and what is allowed."""
        response = client.post("/_emulator/faults", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert message in error
        assert "\n" not in error
        assert emulator.stats()["faults"] == []

    def test_unparseable_body_is_400(self, client: httpx.Client) -> None:
        """A control body that is not JSON is refused with 400."""
        response = client.post("/_emulator/configure", content=b"{oops")
        assert response.status_code == 400
        assert "needs a JSON object body" in response.json()["error"]

    def test_bad_configure_and_clear_input_is_400(self, client: httpx.Client) -> None:
        """Negative knobs and unknown providers are refused with 400."""
        bad_knobs = {"provider": "gemini", "cached_tokens": -5}
        response = client.post("/_emulator/configure", json=bad_knobs)
        assert response.status_code == 400
        assert "cached_tokens must be an integer >= 0" in response.json()["error"]
        response = client.delete("/_emulator/faults", params={"provider": "bogus"})
        assert response.status_code == 400
        assert "allowed providers: gemini" in response.json()["error"]

    def test_unknown_endpoint_and_method(self, client: httpx.Client) -> None:
        """Unknown control paths are 404 listing the endpoints; wrong methods are 405."""
        missing = client.get("/_emulator/nope")
        assert missing.status_code == 404
        assert "GET /_emulator/stats" in missing.json()["error"]
        wrong = client.put("/_emulator/faults")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "POST, DELETE"
