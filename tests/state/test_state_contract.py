"""The `StateStore` contract, proven the same way on every backend."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import pytest

from nexus_llm.state import MemoryStore, SQLiteStore, StateStore
from nexus_llm.state.redis import RedisStore
from tests.support import FakeClock, RedisServer

BACKENDS = ["memory", "sqlite", "redis", "fakeredis"]


@dataclass
class Backend:
    """A store under test and how to let time pass for it."""

    kind: str
    store: StateStore
    ttl_s: float  # a TTL the test can outlive cheaply
    clock: FakeClock | None  # None: the server's real clock

    def outlive(self, key: str) -> None:
        """Move past `ttl_s`: advance the fake clock, or poll the server until `key` is gone."""
        if self.clock is not None:
            self.clock.advance(self.ttl_s)
            return
        # Real Redis counts its own milliseconds: the one place these tests wait, bounded.
        deadline = time.monotonic() + 5.0
        while self.store.get(key) is not None:
            assert time.monotonic() < deadline, f"{key} outlived its TTL on {self.kind}"
            time.sleep(0.01)

    def require_lua(self) -> None:
        """Skip on fakeredis without `lupa`, which it needs to run Lua scripts."""
        if self.kind == "fakeredis" and importlib.util.find_spec("lupa") is None:
            pytest.skip(
                "fakeredis runs Lua only with `lupa` (fakeredis[lua]); real Redis covers it"
            )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn, empty, with a fake clock where the backend takes one."""
    kind: str = request.param
    clock = FakeClock()
    prefix = f"test:{uuid.uuid4().hex}:"
    if kind == "memory":
        made = Backend(kind, MemoryStore(clock=clock), 10.0, clock)
    elif kind == "sqlite":
        made = Backend(kind, SQLiteStore(tmp_path / "state.db", clock=clock), 10.0, clock)
    elif kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        made = Backend(kind, RedisStore(server.url, prefix=prefix, timeout_s=2.0), 0.15, None)
    else:
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        made = Backend(kind, RedisStore.from_client(client, prefix=prefix), 0.15, None)
    yield made
    made.store.close()


def test_meets_the_protocol(backend: Backend) -> None:
    """Every backend is a `StateStore` with a name."""
    assert isinstance(backend.store, StateStore)
    assert backend.store.name == backend.kind.removeprefix("fake")


def test_get_missing_is_none(backend: Backend) -> None:
    """A key never written reads as None."""
    assert backend.store.get("nothing") is None


def test_put_then_get_round_trips_bytes(backend: Backend) -> None:
    """Any bytes come back as written, including empty and non-UTF-8 values."""
    store = backend.store
    store.put("a", b"\x00\xff binary")
    store.put("empty", b"")
    assert store.get("a") == b"\x00\xff binary"
    assert store.get("empty") == b""


def test_put_overwrites(backend: Backend) -> None:
    """A second put replaces the first value."""
    backend.store.put("k", b"one")
    backend.store.put("k", b"two")
    assert backend.store.get("k") == b"two"


def test_keys_are_independent(backend: Backend) -> None:
    """Writing one key leaves another untouched."""
    backend.store.put("k1", b"one")
    backend.store.put("k2", b"two")
    assert backend.store.delete("k1")
    assert backend.store.get("k2") == b"two"


def test_put_with_ttl_expires(backend: Backend) -> None:
    """A value put with a TTL is there until the TTL passes, then absent."""
    backend.store.put("k", b"v", ttl_s=backend.ttl_s)
    assert backend.store.get("k") == b"v"
    backend.outlive("k")
    assert backend.store.get("k") is None


@pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True)
def test_ttl_boundary_on_fake_clock(backend: Backend) -> None:
    """On an injected clock a value lives until just before `ttl_s` and is gone at `ttl_s`."""
    assert backend.clock is not None
    backend.store.put("k", b"v", ttl_s=10.0)
    backend.clock.advance(9.999)
    assert backend.store.get("k") == b"v"
    backend.clock.advance(0.001)
    assert backend.store.get("k") is None


def test_put_without_ttl_clears_an_earlier_ttl(backend: Backend) -> None:
    """Replacing a value with `ttl_s=None` makes it permanent."""
    backend.store.put("k", b"old", ttl_s=backend.ttl_s)
    backend.store.put("witness", b"w", ttl_s=backend.ttl_s)
    backend.store.put("k", b"new")
    backend.outlive("witness")
    assert backend.store.get("k") == b"new"


def test_add_sets_only_if_absent(backend: Backend) -> None:
    """The first add wins; a second add fails and leaves the first value."""
    assert backend.store.add("lock", b"me", ttl_s=60.0)
    assert not backend.store.add("lock", b"you", ttl_s=60.0)
    assert backend.store.get("lock") == b"me"


def test_add_fails_on_a_put_value(backend: Backend) -> None:
    """add treats a value written by put (without TTL) as present."""
    backend.store.put("lock", b"owner")
    assert not backend.store.add("lock", b"me", ttl_s=60.0)


def test_add_succeeds_after_expiry(backend: Backend) -> None:
    """A lock whose TTL has passed can be taken again."""
    assert backend.store.add("lock", b"first", ttl_s=backend.ttl_s)
    backend.outlive("lock")
    assert backend.store.add("lock", b"second", ttl_s=60.0)
    assert backend.store.get("lock") == b"second"


def test_added_value_expires(backend: Backend) -> None:
    """add's TTL is applied."""
    assert backend.store.add("lock", b"me", ttl_s=backend.ttl_s)
    backend.outlive("lock")
    assert backend.store.get("lock") is None


def test_cas_with_none_expected_sets_only_when_absent(backend: Backend) -> None:
    """CAS from None succeeds on a missing key and fails once the key exists."""
    backend.require_lua()
    assert backend.store.compare_and_swap("k", None, b"one")
    assert not backend.store.compare_and_swap("k", None, b"two")
    assert backend.store.get("k") == b"one"


def test_cas_with_none_expected_succeeds_after_expiry(backend: Backend) -> None:
    """An expired key counts as absent for CAS from None."""
    backend.require_lua()
    backend.store.put("k", b"stale", ttl_s=backend.ttl_s)
    backend.outlive("k")
    assert backend.store.compare_and_swap("k", None, b"fresh")
    assert backend.store.get("k") == b"fresh"


def test_cas_mismatch_leaves_value(backend: Backend) -> None:
    """CAS with the wrong expected value changes nothing."""
    backend.require_lua()
    backend.store.put("k", b"actual")
    assert not backend.store.compare_and_swap("k", b"other", b"new")
    assert not backend.store.compare_and_swap("k", b"", b"new")
    assert backend.store.get("k") == b"actual"


def test_cas_on_missing_key_with_expected_value_fails(backend: Backend) -> None:
    """CAS expecting a value does not create a missing key."""
    backend.require_lua()
    assert not backend.store.compare_and_swap("k", b"", b"new")
    assert not backend.store.compare_and_swap("k", b"old", b"new")
    assert backend.store.get("k") is None


def test_cas_match_replaces(backend: Backend) -> None:
    """CAS with the current value swaps in the new one."""
    backend.require_lua()
    backend.store.put("k", b"old")
    assert backend.store.compare_and_swap("k", b"old", b"new")
    assert backend.store.get("k") == b"new"


def test_cas_with_ttl_expires(backend: Backend) -> None:
    """The TTL given to CAS applies to the new value."""
    backend.require_lua()
    backend.store.put("k", b"old")
    assert backend.store.compare_and_swap("k", b"old", b"new", ttl_s=backend.ttl_s)
    assert backend.store.get("k") == b"new"
    backend.outlive("k")
    assert backend.store.get("k") is None


def test_cas_without_ttl_drops_the_old_ttl(backend: Backend) -> None:
    """A swap with `ttl_s=None` stores the new value with no expiry, not the old value's TTL."""
    backend.require_lua()
    backend.store.put("k", b"old", ttl_s=backend.ttl_s)
    backend.store.put("witness", b"w", ttl_s=backend.ttl_s)
    assert backend.store.compare_and_swap("k", b"old", b"new")
    backend.outlive("witness")
    assert backend.store.get("k") == b"new"


def test_delete_reports_whether_it_removed(backend: Backend) -> None:
    """delete is True for a present key and False for a missing one."""
    backend.store.put("k", b"v")
    assert backend.store.delete("k")
    assert backend.store.get("k") is None
    assert not backend.store.delete("k")


def test_delete_only_if_mismatch_keeps_value(backend: Backend) -> None:
    """delete(only_if=...) leaves a key holding another value."""
    backend.require_lua()
    backend.store.put("lock", b"someone-else")
    assert not backend.store.delete("lock", only_if=b"me")
    assert backend.store.get("lock") == b"someone-else"


def test_delete_only_if_match_removes(backend: Backend) -> None:
    """delete(only_if=...) removes a key holding exactly that value."""
    backend.require_lua()
    backend.store.put("lock", b"me")
    assert backend.store.delete("lock", only_if=b"me")
    assert backend.store.get("lock") is None
    assert not backend.store.delete("lock", only_if=b"me")


def test_delete_of_expired_key_is_false(backend: Backend) -> None:
    """An expired key is already absent, so deleting it removes nothing."""
    backend.store.put("k", b"v", ttl_s=backend.ttl_s)
    backend.outlive("k")
    assert not backend.store.delete("k")
