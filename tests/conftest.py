"""Fixtures shared by the project's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nexus_llm.emulator import Emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One provider emulator on 127.0.0.1 for the whole session (per xdist worker)."""
    with Emulator() as running:
        yield running


@pytest.fixture
def fresh_emulator(emulator: Emulator) -> Iterator[Emulator]:
    """The session emulator with faults, knobs and counts reset before and after the test."""
    emulator.reset()
    yield emulator
    emulator.reset()
