"""Fixtures for the state-store tests: real redis-servers and a fake clock."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.state.harness import FakeClock, RedisServer


def require_executable(name: str, *, needed_for: str) -> str:
    """The path of `name` on PATH: without it the test is skipped — or failed when CI is "true".

    A skip on a developer's machine is a convenience; in CI the same skip would hide that the
    pipeline never ran the test, so there a missing tool is a failure.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"`{name}` is not on PATH; it is needed for {needed_for}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: install it instead of skipping)", pytrace=False)
    pytest.skip(reason)


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
