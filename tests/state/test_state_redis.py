"""The Redis store: what it keeps on the server, and failures that never leak the URL."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

from nexus_llm.state import StoreUnavailableError
from nexus_llm.state.redis import RedisStore
from tests.support import RedisServer, clean_environ, free_port

SECRET_URL = "redis://nexus:hunter2@127.0.0.1:1/0"

Op = Callable[[RedisStore], object]
OPS: dict[str, Op] = {
    "get": lambda s: s.get("k"),
    "put": lambda s: s.put("k", b"v", ttl_s=1.0),
    "add": lambda s: s.add("k", b"v", ttl_s=1.0),
    "cas": lambda s: s.compare_and_swap("k", None, b"v"),
    "delete": lambda s: s.delete("k"),
    "delete_only_if": lambda s: s.delete("k", only_if=b"v"),
}


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisStore]:
    """A store on the session's redis-server, under a prefix of its own."""
    opened = RedisStore(redis_server.url, prefix=f"t:{uuid.uuid4().hex}:", timeout_s=2.0)
    yield opened
    opened.close()


def _assert_safe(exc: StoreUnavailableError) -> None:
    message = str(exc)
    assert message.startswith("redis unavailable: ")
    assert "\n" not in message
    for secret in ("hunter2", "nexus:", "redis://", "127.0.0.1"):
        assert secret not in message
    assert exc.__suppress_context__


def test_keys_carry_the_prefix(redis_server: RedisServer) -> None:
    """Every key is stored under the store's prefix."""
    store = RedisStore(redis_server.url, prefix="pfx-test:")
    try:
        store.put("k", b"v")
        with redis_server.client() as raw:
            assert raw.get("pfx-test:k") == b"v"
            assert raw.get("k") is None
    finally:
        store.delete("k")
        store.close()


def test_ttls_are_milliseconds_on_the_server(store: RedisStore, redis_server: RedisServer) -> None:
    """TTLs go to Redis as PX, rounded up to whole milliseconds, at least 1 ms."""
    store.put("long", b"v", ttl_s=1.5)
    assert store.add("lock", b"v", ttl_s=30.0)
    prefix = store._prefix
    with redis_server.client() as raw:
        assert 1000 < raw.pttl(prefix + "long") <= 1500
        assert 29_000 < raw.pttl(prefix + "lock") <= 30_000
        store.put("tiny", b"v", ttl_s=0.0)
        assert raw.pttl(prefix + "tiny") in (-2, 0, 1)


def test_cas_without_ttl_stores_a_permanent_value(
    store: RedisStore, redis_server: RedisServer
) -> None:
    """A swap with `ttl_s=None` leaves no TTL from the value it replaced; with a TTL it sets it."""
    store.put("k", b"old", ttl_s=60.0)
    assert store.compare_and_swap("k", b"old", b"new")
    with redis_server.client() as raw:
        assert raw.pttl(store._prefix + "k") == -1
        assert store.compare_and_swap("k", b"new", b"newer", ttl_s=60.0)
        assert 59_000 < raw.pttl(store._prefix + "k") <= 60_000


def test_scripts_survive_a_script_cache_flush(store: RedisStore, redis_server: RedisServer) -> None:
    """After the server forgets the Lua scripts (a restart, SCRIPT FLUSH) they are loaded again."""
    store.put("k", b"a")
    assert store.compare_and_swap("k", b"a", b"b")
    with redis_server.client() as raw:
        raw.script_flush()
    assert store.compare_and_swap("k", b"b", b"c")
    assert store.delete("k", only_if=b"c")


@pytest.mark.timeout(15)
@pytest.mark.parametrize("op", OPS)
def test_refused_connection_is_unavailable_without_the_url(op: str) -> None:
    """Nothing listening: every operation raises one line that names neither URL nor password."""
    store = RedisStore(SECRET_URL, timeout_s=0.25)
    with pytest.raises(StoreUnavailableError) as caught:
        OPS[op](store)
    _assert_safe(caught.value)
    assert str(caught.value) == "redis unavailable: connection failed"


@pytest.mark.timeout(15)
def test_silent_server_times_out() -> None:
    """A server that accepts but never answers costs one read timeout, reported as such."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        store = RedisStore(f"redis://:hunter2@127.0.0.1:{port}/0", timeout_s=0.1)
        with pytest.raises(StoreUnavailableError) as caught:
            store.get("k")
        store.close()
    _assert_safe(caught.value)
    assert str(caught.value) == "redis unavailable: timed out"


def test_read_only_replica_is_unavailable_for_writes(own_redis_server: RedisServer) -> None:
    """A server turned read-only replica refuses writes and scripts with READONLY: unavailable."""
    store = RedisStore(own_redis_server.url, timeout_s=2.0)
    store.put("k", b"v")
    with own_redis_server.client() as raw:
        raw.replicaof("127.0.0.1", str(free_port()))
    try:
        writes: list[Op] = [
            lambda s: s.put("new", b"v"),
            lambda s: s.add("new", b"v", ttl_s=1.0),
            lambda s: s.compare_and_swap("k", b"v", b"w"),
            lambda s: s.delete("k", only_if=b"v"),
        ]
        for write in writes:
            with pytest.raises(StoreUnavailableError) as caught:
                write(store)
            _assert_safe(caught.value)
            assert "READONLY" in str(caught.value)
        assert store.get("k") == b"v"
    finally:
        store.close()


def test_wrong_password_is_unavailable(own_redis_server: RedisServer) -> None:
    """A server that requires a password the URL gets wrong: one line, no password in it."""
    with own_redis_server.client() as raw:
        raw.config_set("requirepass", "right-one")
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{own_redis_server.port}/0", timeout_s=2.0)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            store.get("k")
        _assert_safe(caught.value)
    finally:
        store.close()


def test_invalid_url_does_not_echo_it() -> None:
    """An unparsable URL is a ValueError whose message does not repeat the URL."""
    with pytest.raises(ValueError, match="Redis URL is invalid") as caught:
        RedisStore("http://nexus:hunter2@example.invalid/0")
    assert "hunter2" not in str(caught.value)


def test_importing_the_state_package_does_not_import_redis() -> None:
    """`import nexus_llm.state` and a SQLite-only `open_store` leave redis unimported."""
    code = (
        "import sys, tempfile, pathlib\n"
        "import nexus_llm.state as state\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "s = state.open_store(redis_url=None, state_path=d / 's.db', redis_timeout_s=0.1,\n"
        "    on_degraded=print, on_recovered=print)\n"
        "s.close()\n"
        "assert 'redis' not in sys.modules, 'redis was imported'\n"
        "assert state.RedisStore.name == 'redis'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=clean_environ(), timeout=60)
