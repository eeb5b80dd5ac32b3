"""The emulated Gemini generateContent: success bodies, usage, auth, routing and validation."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from nexus_llm.emulator import Emulator
from nexus_llm.emulator._gemini import count_tokens, prompt_tokens

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
Generate = Callable[..., httpx.Response]


def _text(response: httpx.Response) -> str:
    text: str = response.json()["candidates"][0]["content"]["parts"][0]["text"]
    return text


def _error(response: httpx.Response) -> dict[str, object]:
    error: dict[str, object] = response.json()["error"]
    assert error["code"] == response.status_code
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    return error


class TestTokenRule:
    """The documented, predictable token counting."""

    @pytest.mark.parametrize(
        ("text", "tokens"),
        [("", 0), ("Hello, world!", 4), ("don't panic", 4), ("  a  b\n", 2), ("x+y=z", 5)],
    )
    def test_count_tokens_counts_words_and_punctuation(self, text: str, tokens: int) -> None:
        """A token is a run of word characters or one punctuation mark."""
        assert count_tokens(text) == tokens

    def test_prompt_tokens_sums_text_parts_of_contents_and_system(self) -> None:
        """Every text part counts, in either spelling of systemInstruction; other parts don't."""
        body: dict[str, object] = {
            "contents": [
                {"role": "user", "parts": [{"text": "one two"}, {"inlineData": {"data": "x"}}]},
                {"role": "model", "parts": [{"text": "three."}]},
            ],
            "system_instruction": {"parts": [{"text": "Be terse."}]},
        }
        assert prompt_tokens(body) == 2 + 2 + 3


class TestSuccess:
    """A valid request gets Gemini's 200 body with deterministic text and usage."""

    def test_body_has_gemini_shape(self, generate: Generate) -> None:
        """The candidate, finish reason, safety ratings, model version and response id are set."""
        response = generate()
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=UTF-8"
        body = response.json()
        candidate = body["candidates"][0]
        assert candidate["content"]["role"] == "model"
        assert candidate["finishReason"] == "STOP"
        assert candidate["index"] == 0
        assert {r["probability"] for r in candidate["safetyRatings"]} == {"NEGLIGIBLE"}
        assert body["modelVersion"] == MODEL
        assert isinstance(body["responseId"], str)
        assert body["responseId"]

    def test_reply_text_and_usage_are_predictable(self, generate: Generate) -> None:
        """Prompt, reply and total counts follow the token rule, and zero counts are omitted."""
        response = generate(text="Hello, world!")
        reply = "Emulated gemini reply to 4 prompt tokens."
        assert _text(response) == reply
        usage = response.json()["usageMetadata"]
        assert usage["promptTokenCount"] == 4
        assert usage["candidatesTokenCount"] == count_tokens(reply) == 8
        assert usage["totalTokenCount"] == 12
        assert "thoughtsTokenCount" not in usage
        assert "cachedContentTokenCount" not in usage

    def test_system_instruction_and_turns_count_toward_prompt(self, generate: Generate) -> None:
        """All turns and the system instruction make up the prompt token count."""
        body = {
            "contents": [
                {"role": "user", "parts": [{"text": "Hi there"}]},
                {"role": "model", "parts": [{"text": "Hello!"}]},
                {"role": "user", "parts": [{"text": "Sum: 1+1?"}]},
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
        }
        response = generate(body)
        assert response.json()["usageMetadata"]["promptTokenCount"] == 2 + 2 + 6 + 4
        assert _text(response) == "Emulated gemini reply to 14 prompt tokens."

    def test_configure_sets_thoughts_and_cached_tokens(
        self, emulator: Emulator, generate: Generate
    ) -> None:
        """Knobs add thoughtsTokenCount to the total and report cachedContentTokenCount."""
        emulator.configure("gemini", thoughts_tokens=87, cached_tokens=3)
        usage = generate(text="Hello, world!").json()["usageMetadata"]
        assert usage["thoughtsTokenCount"] == 87
        assert usage["cachedContentTokenCount"] == 3
        assert usage["totalTokenCount"] == 4 + 8 + 87

    def test_cached_tokens_are_clamped_to_the_prompt(
        self, emulator: Emulator, generate: Generate
    ) -> None:
        """Cached tokens are part of the prompt, so they never exceed it."""
        emulator.configure("gemini", cached_tokens=1000)
        usage = generate(text="Hello, world!").json()["usageMetadata"]
        assert usage["cachedContentTokenCount"] == usage["promptTokenCount"] == 4

    def test_response_ids_are_unique(self, generate: Generate) -> None:
        """Every response carries its own responseId."""
        ids = {generate().json()["responseId"] for _ in range(20)}
        assert len(ids) == 20

    def test_max_output_tokens_truncates_with_max_tokens(self, generate: Generate) -> None:
        """A reply over maxOutputTokens is cut to that many tokens with finishReason MAX_TOKENS."""
        body = {
            "contents": [{"parts": [{"text": "Hello"}]}],
            "generationConfig": {"maxOutputTokens": 3},
        }
        response = generate(body)
        candidate = response.json()["candidates"][0]
        assert candidate["content"]["parts"][0]["text"] == "Emulated gemini reply"
        assert candidate["finishReason"] == "MAX_TOKENS"
        assert response.json()["usageMetadata"]["candidatesTokenCount"] == 3

    def test_generous_max_output_tokens_stops_normally(self, generate: Generate) -> None:
        """A limit the reply fits in leaves it whole with finishReason STOP."""
        body = {
            "contents": [{"parts": [{"text": "Hello"}]}],
            "generation_config": {"max_output_tokens": 8},
        }
        candidate = generate(body).json()["candidates"][0]
        assert candidate["finishReason"] == "STOP"
        assert candidate["content"]["parts"][0]["text"].endswith("prompt tokens.")

    def test_snake_case_fields_are_accepted(self, generate: Generate) -> None:
        """system_instruction and generation_config.max_output_tokens work like camelCase."""
        body = {
            "contents": [{"parts": [{"text": "Hello"}]}],
            "system_instruction": {"parts": [{"text": "Be brief"}]},
            "generation_config": {"max_output_tokens": 2},
        }
        response = generate(body)
        assert response.json()["usageMetadata"]["promptTokenCount"] == 3
        assert _text(response) == "Emulated gemini"

    def test_json_mode_replies_with_json(self, generate: Generate) -> None:
        """responseMimeType application/json makes the reply a small JSON document."""
        body = {
            "contents": [{"parts": [{"text": "Status please"}]}],
            "generationConfig": {"responseMimeType": "application/json"},
        }
        response = generate(body)
        assert json.loads(_text(response)) == {"emulated": True, "prompt_tokens": 2}
        assert response.json()["usageMetadata"]["candidatesTokenCount"] == count_tokens(
            _text(response)
        )


class TestAuth:
    """API keys are checked the way Gemini checks them."""

    def test_key_in_header_is_accepted(self, generate: Generate) -> None:
        """The x-goog-api-key header authenticates."""
        assert generate().status_code == 200

    def test_key_in_query_is_accepted(self, client: httpx.Client, emulator: Emulator) -> None:
        """The ?key= query parameter authenticates too."""
        response = client.post(
            GENERATE,
            params={"key": emulator.gemini_key},
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
        assert response.status_code == 200

    def test_missing_key_is_403_permission_denied(self, generate: Generate) -> None:
        """No key at all is 403 PERMISSION_DENIED about unregistered callers."""
        response = generate(key=None)
        assert response.status_code == 403
        error = _error(response)
        assert error["status"] == "PERMISSION_DENIED"
        assert str(error["message"]).startswith("Method doesn't allow unregistered callers")

    def test_wrong_key_is_400_api_key_invalid(self, generate: Generate) -> None:
        """A wrong key is 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID."""
        response = generate(key="not-the-key")
        assert response.status_code == 400
        error = _error(response)
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["message"] == "API key not valid. Please pass a valid API key."
        details = error["details"]
        assert isinstance(details, list)
        info = next(d for d in details if d["@type"].endswith("google.rpc.ErrorInfo"))
        assert info["reason"] == "API_KEY_INVALID"
        assert info["domain"] == "googleapis.com"

    def test_custom_key_is_honoured(self) -> None:
        """The key given to the constructor is the one accepted."""
        with Emulator(gemini_key="sekrit") as emu, httpx.Client(base_url=emu.base_url) as http:
            body = {"contents": [{"parts": [{"text": "hi"}]}]}
            ok = http.post(GENERATE, json=body, headers={"x-goog-api-key": "sekrit"})
            default = http.post(
                GENERATE, json=body, headers={"x-goog-api-key": "emulator-gemini-key"}
            )
        assert (ok.status_code, default.status_code) == (200, 400)


class TestRouting:
    """Unknown models, paths and methods get Google's error envelope."""

    def test_unknown_model_is_404(self, generate: Generate) -> None:
        """A model id not starting with gemini- is 404 NOT_FOUND with Google's wording."""
        response = generate(model="gpt-4o")
        assert response.status_code == 404
        error = _error(response)
        assert error["status"] == "NOT_FOUND"
        assert str(error["message"]).startswith(
            "models/gpt-4o is not found for API version v1beta, or is not supported for "
            "generateContent."
        )

    def test_unknown_path_is_404_and_not_counted(
        self, client: httpx.Client, emulator: Emulator
    ) -> None:
        """A path no provider owns is a 404 envelope and counts as no provider's request."""
        response = client.get("/nowhere")
        assert response.status_code == 404
        assert _error(response)["status"] == "NOT_FOUND"
        assert emulator.request_count() == 0

    def test_wrong_method_is_405(self, client: httpx.Client, emulator: Emulator) -> None:
        """GET on generateContent is 405 in the envelope with an Allow header."""
        response = client.get(GENERATE, headers={"x-goog-api-key": emulator.gemini_key})
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        _error(response)

    def test_percent_encoded_colon_is_routed(
        self, client: httpx.Client, emulator: Emulator
    ) -> None:
        """A client that percent-encodes the colon still reaches generateContent."""
        response = client.post(
            f"/v1beta/models/{MODEL}%3AgenerateContent",
            headers={"x-goog-api-key": emulator.gemini_key},
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
        assert response.status_code == 200


class TestBodyValidation:
    """Bad request bodies get 400 INVALID_ARGUMENT with a realistic message."""

    def test_invalid_json_is_400(self, client: httpx.Client, emulator: Emulator) -> None:
        """A body that is not JSON is rejected as an invalid JSON payload."""
        response = client.post(
            GENERATE, content=b"{not json", headers={"x-goog-api-key": emulator.gemini_key}
        )
        assert response.status_code == 400
        error = _error(response)
        assert error["status"] == "INVALID_ARGUMENT"
        assert str(error["message"]).startswith("Invalid JSON payload received.")

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({}, "* GenerateContentRequest.contents: contents is not specified\n"),
            ({"contents": []}, "* GenerateContentRequest.contents: contents is not specified\n"),
            ([1, 2], 'Invalid JSON payload received. Unknown name "": Root element must be a'),
            ({"contents": [{"parts": []}]}, "* GenerateContentRequest.contents[0].parts: "),
            ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "Please use a"),
            ({"contents": [{"parts": [{"text": 5}]}]}, "Invalid value at 'contents[0].parts"),
            ({"contents": "hi"}, "Invalid value at 'contents'"),
            ({"prompt": "hi"}, 'Invalid JSON payload received. Unknown name "prompt"'),
            (
                {
                    "contents": [{"parts": [{"text": "x"}]}],
                    "generationConfig": {"maxOutputTokens": "a"},
                },
                "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32)",
            ),
            (
                {
                    "contents": [{"parts": [{"text": "x"}]}],
                    "generationConfig": {"responseMimeType": "text/csv"},
                },
                "* GenerateContentRequest.generation_config.response_mime_type: allowed",
            ),
        ],
    )
    def test_bad_bodies_are_400(self, generate: Generate, body: object, message: str) -> None:
        """Each malformed body is refused with Google's message for that mistake."""
        response = generate(body)
        assert response.status_code == 400
        error = _error(response)
        assert error["status"] == "INVALID_ARGUMENT"
        assert str(error["message"]).startswith(message)

    def test_auth_is_checked_before_the_body(self, generate: Generate) -> None:
        """A bad body with no key is refused for the key, as the live API does."""
        assert generate({"contents": []}, key=None).status_code == 403
