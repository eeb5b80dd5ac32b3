"""Fixtures shared by the project's own tests: the emulator, real redis-servers, a clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nexus_llm.emulator import Emulator
from tests.support import FakeClock, RedisServer, require_executable


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


def _redis_executable() -> str:
    return require_executable("redis-server", needed_for="tests against a real Redis")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (tests keep apart by key prefix); never stopped early."""
    server = RedisServer(_redis_executable(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and start again."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(_redis_executable(), workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only when the test advances it."""
    return FakeClock()
