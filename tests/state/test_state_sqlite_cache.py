"""The SQLite store's read cache: exact for every store that writes, bounded for any other."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from nexus_llm.state import SQLiteStore, StoreUnavailableError
from tests.support import FakeClock

FOREVER = 3600.0  # a cache age no test reaches: only the change mark can drop an entry


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def reader(db_path: Path, fake_clock: FakeClock) -> Iterator[SQLiteStore]:
    """A store that trusts its cache until the change mark moves."""
    opened = SQLiteStore(db_path, clock=fake_clock, cache_max_age_s=FOREVER)
    yield opened
    opened.close()


def _write_behind_its_back(path: Path, key: str, value: bytes) -> None:
    """A writer that does not move the change mark (another tool, an older version)."""
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("UPDATE nexus_state SET value = ? WHERE key = ?", (value, key))
        raw.commit()


def test_reads_are_served_from_memory_until_something_is_written(
    reader: SQLiteStore, db_path: Path, fake_clock: FakeClock
) -> None:
    """A change the mark does not announce stays unseen (proof the read came from memory);
    any write by a store — even of another key — drops the cache, and the change is seen."""
    writer = SQLiteStore(db_path, clock=fake_clock)
    try:
        writer.put("breaker:gemini", b"closed")
        assert reader.get("breaker:gemini") == b"closed"
        _write_behind_its_back(db_path, "breaker:gemini", b"changed behind its back")
        assert reader.get("breaker:gemini") == b"closed"
        writer.put("some:other:key", b"x")
        assert reader.get("breaker:gemini") == b"changed behind its back"
    finally:
        writer.close()


@pytest.mark.parametrize("write", ["put", "add", "cas", "delete"])
def test_every_write_of_another_store_is_seen_at_once(
    reader: SQLiteStore, db_path: Path, fake_clock: FakeClock, write: str
) -> None:
    """Each kind of write, made through a second connection, is seen by the very next read."""
    writer = SQLiteStore(db_path, clock=fake_clock)
    try:
        if write != "add":
            writer.put("k", b"before")
        before = None if write == "add" else b"before"
        assert reader.get("k") == before
        assert reader.get("k") == before  # now cached
        if write == "put":
            writer.put("k", b"after")
        elif write == "add":
            assert writer.add("k", b"after", ttl_s=60)
        elif write == "cas":
            assert writer.compare_and_swap("k", b"before", b"after")
        else:
            assert writer.delete("k")
        assert reader.get("k") == (None if write == "delete" else b"after")
    finally:
        writer.close()


def test_own_writes_are_seen(reader: SQLiteStore) -> None:
    assert reader.get("k") is None
    reader.put("k", b"v1")
    assert reader.get("k") == b"v1"
    assert reader.compare_and_swap("k", b"v1", b"v2")
    assert reader.get("k") == b"v2"


def test_a_cached_value_still_expires(reader: SQLiteStore, fake_clock: FakeClock) -> None:
    """The cache keeps each value's expiry: past it, the value is gone without a write."""
    reader.put("lock", b"me", ttl_s=10)
    assert reader.get("lock") == b"me"
    fake_clock.advance(9.5)
    assert reader.get("lock") == b"me"
    fake_clock.advance(1.0)
    assert reader.get("lock") is None


def test_a_silent_writer_is_seen_once_the_cache_is_too_old(db_path: Path) -> None:
    """With no mark moved, the age bound decides: at age 0 every read goes to SQLite."""
    uncached = SQLiteStore(db_path, cache_max_age_s=0.0)
    try:
        uncached.put("k", b"before")
        assert uncached.get("k") == b"before"
        _write_behind_its_back(db_path, "k", b"after")
        assert uncached.get("k") == b"after"
    finally:
        uncached.close()


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork() to test it"
)
def test_a_write_in_another_process_is_seen_at_once(reader: SQLiteStore, db_path: Path) -> None:
    """The mark is shared memory: another process's commit reaches this one's next read."""
    reader.put("breaker:gemini", b"closed")
    assert reader.get("breaker:gemini") == b"closed"
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_open_the_breaker, args=(db_path,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert reader.get("breaker:gemini") == b"open"


def _open_the_breaker(path: Path) -> None:
    store = SQLiteStore(path)
    store.put("breaker:gemini", b"open")
    store.close()


def test_without_a_mark_every_read_goes_to_sqlite(db_path: Path) -> None:
    """A mark that cannot be created (a folder in its place) leaves the store uncached but
    working."""
    Path(f"{db_path}-changes").mkdir(parents=True)
    store = SQLiteStore(db_path, cache_max_age_s=FOREVER)
    try:
        store.put("k", b"before")
        assert store.get("k") == b"before"
        _write_behind_its_back(db_path, "k", b"after")
        assert store.get("k") == b"after"
    finally:
        store.close()


def test_a_store_opened_through_a_symlink_marks_the_real_file(tmp_path: Path) -> None:
    """The mark is named after the file the path leads to: a writer through a symlink reaches
    the reader's cache like any other."""
    real = tmp_path / "state.db"
    reader = SQLiteStore(real, cache_max_age_s=FOREVER)
    alias = tmp_path / "alias.db"
    alias.symlink_to(real)
    writer = SQLiteStore(alias, cache_max_age_s=FOREVER)
    try:
        writer.put("k", b"old")
        assert reader.get("k") == b"old"
        writer.put("k", b"new")
        assert reader.get("k") == b"new"
    finally:
        writer.close()
        reader.close()


def test_reads_racing_close_raise_only_store_errors(tmp_path: Path) -> None:
    """Threads reading while the store is closed see StoreUnavailableError, nothing rawer."""
    escaped: list[BaseException] = []

    def hammer(store: SQLiteStore, started: threading.Event) -> None:
        started.set()
        while True:
            try:
                store.get("k")
            except StoreUnavailableError:
                return
            except BaseException as exc:  # collected: any other error fails the test
                escaped.append(exc)
                return

    for n in range(50):
        store = SQLiteStore(tmp_path / f"s{n}.db")
        store.put("k", b"v")
        started = threading.Event()
        threads = [threading.Thread(target=hammer, args=(store, started)) for _ in range(4)]
        for thread in threads:
            thread.start()
        started.wait(10)
        store.close()
        for thread in threads:
            thread.join(10)
    assert escaped == []


def test_an_in_memory_store_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore(":memory:")
    store.put("k", b"v")
    assert store.get("k") == b"v"
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_mark_is_a_change_not_a_crash(tmp_path: Path) -> None:
    """Someone empties the mark file: the next read re-reads SQLite (no SIGBUS, as a memory
    map would give), and the next write restores it."""
    code = (
        "import os\n"
        "from nexus_llm.state import SQLiteStore\n"
        "s = SQLiteStore('state.db', cache_max_age_s=3600); s.put('k', b'v')\n"
        "assert s.get('k') == b'v'\n"
        "os.truncate('state.db-changes', 0)\n"
        "assert s.get('k') == b'v'\n"
        "s.put('k', b'w')\n"
        "assert s.get('k') == b'w' and os.path.getsize('state.db-changes') == 8\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0


def test_the_mark_has_the_databases_permissions(db_path: Path) -> None:
    """Whoever may write the database may move the mark (a group-writable database gets a
    group-writable mark), or their writes would reach others only through the age bound."""
    SQLiteStore(db_path).close()
    db_path.chmod(0o664)
    Path(f"{db_path}-changes").unlink()
    SQLiteStore(db_path).close()
    assert Path(f"{db_path}-changes").stat().st_mode & 0o777 == 0o664 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
