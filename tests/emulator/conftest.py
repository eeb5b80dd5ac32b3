"""Shared fixtures: one in-process emulator per module, reset before every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from nexus_llm.emulator import Emulator

MODEL = "gemini-2.5-flash"

Generate = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A running emulator shared by the tests of one module."""
    emu = Emulator().start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def _fresh_emulator(request: pytest.FixtureRequest) -> None:
    """Clear faults, knobs and counts so tests sharing the emulator cannot leak into each other."""
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset()


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the emulator, closed after the test."""
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as http:
        yield http


@pytest.fixture
def generate(client: httpx.Client, emulator: Emulator) -> Generate:
    """Post a generateContent body with the right key unless told otherwise."""

    def post(
        body: object = None,
        *,
        text: str = "Hello, world!",
        key: str | None = "right",
        model: str = MODEL,
        timeout: float = 10.0,
    ) -> httpx.Response:
        if body is None:
            body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        headers = {} if key is None else {"x-goog-api-key": emulator.gemini_key}
        if key not in (None, "right"):
            headers["x-goog-api-key"] = key
        return client.post(
            f"/v1beta/models/{model}:generateContent", json=body, headers=headers, timeout=timeout
        )

    return post
