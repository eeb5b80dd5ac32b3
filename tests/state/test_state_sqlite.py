"""The SQLite store: the file it keeps, threads in one process, and how it fails."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from nexus_llm.state import SQLiteStore, StoreUnavailableError
from tests.support import FakeClock

THREADS = 8


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database path whose parent folders do not exist yet."""
    return tmp_path / "deep" / "er" / "state.db"


@pytest.fixture
def store(db_path: Path, fake_clock: FakeClock) -> Iterator[SQLiteStore]:
    """A SQLite store on the fake clock."""
    opened = SQLiteStore(db_path, clock=fake_clock)
    yield opened
    opened.close()


def _rows(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as raw:
        return [row[0] for row in raw.execute("SELECT key FROM nexus_state ORDER BY key")]


def _assert_one_line_naming(exc: StoreUnavailableError, path: Path) -> None:
    message = str(exc)
    assert "\n" not in message
    assert str(path) in message
    assert "Traceback" not in message


def test_creates_parent_folders_and_uses_wal(store: SQLiteStore, db_path: Path) -> None:
    """Opening creates missing folders and leaves the file in WAL mode."""
    store.put("k", b"v")
    assert db_path.is_file()
    with closing(sqlite3.connect(db_path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_stores_on_one_file_share_state(store: SQLiteStore, db_path: Path) -> None:
    """Two stores (two connections, as two processes would have) see each other's writes."""
    other = SQLiteStore(db_path)
    try:
        store.put("k", b"from one")
        assert other.get("k") == b"from one"
        assert not other.add("k", b"from two", ttl_s=60.0)
    finally:
        other.close()


def test_expired_rows_are_purged_when_touched(
    store: SQLiteStore, db_path: Path, fake_clock: FakeClock
) -> None:
    """Reading an expired key removes its row from the file."""
    store.put("k", b"v", ttl_s=1.0)
    store.put("keep", b"v")
    store.put("k2", b"v", ttl_s=1.0)
    fake_clock.advance(1.0)
    assert store.get("k") is None
    assert _rows(db_path) == ["k2", "keep"]


def test_expired_rows_are_swept(store: SQLiteStore, db_path: Path, fake_clock: FakeClock) -> None:
    """About once a minute a write also sweeps rows nobody touched since they expired."""
    for i in range(10):
        store.put(f"old{i}", b"v", ttl_s=1.0)
    fake_clock.advance(30.0)
    store.put("fresh", b"v")
    assert len(_rows(db_path)) == 11
    fake_clock.advance(31.0)
    store.put("fresher", b"v")
    assert _rows(db_path) == ["fresh", "fresher"]


def test_threads_share_one_store_safely(store: SQLiteStore) -> None:
    """8 threads race for 100 locks and add 8 × 100 by CAS: one winner each, no lost update."""
    barrier = threading.Barrier(THREADS)
    wins: Counter[int] = Counter()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for i in range(100):
                if store.add(f"lock:{i}", b"me", ttl_s=60.0):
                    wins[i] += 1
                while True:
                    current = store.get("counter")
                    new = str(int(current or b"0") + 1).encode()
                    if store.compare_and_swap("counter", current, new):
                        break
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(wins) == list(range(100))
    assert set(wins.values()) == {1}
    assert store.get("counter") == str(THREADS * 100).encode()


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork() to test it"
)
@pytest.mark.timeout(30)
def test_store_opened_before_fork_works_in_the_child(store: SQLiteStore, db_path: Path) -> None:
    """A child forked with the store open (a pre-fork server) gets its own working connection."""
    store.put("parent", b"v")
    child = multiprocessing.get_context("fork").Process(target=_child_writes, args=(store,))
    child.start()
    child.join(timeout=20)
    assert child.exitcode == 0
    assert store.get("child") == b"parent saw v"


def _child_writes(store: SQLiteStore) -> None:
    store.put("child", b"parent saw " + (store.get("parent") or b"nothing"))


def test_a_writer_blocking_past_busy_timeout_is_unavailable(db_path: Path) -> None:
    """A write lock held past `busy_timeout_s` elsewhere: reads work, writes are unavailable."""
    store = SQLiteStore(db_path, busy_timeout_s=0.05)
    store.put("k", b"v")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        assert store.get("k") == b"v"
        with pytest.raises(StoreUnavailableError) as caught:
            store.add("lock", b"me", ttl_s=60.0)
        _assert_one_line_naming(caught.value, db_path)
        assert "locked" in str(caught.value)
        blocker.execute("ROLLBACK")
        assert store.add("lock", b"me", ttl_s=60.0)
    finally:
        blocker.close()
        store.close()


def test_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    """A file that is not a SQLite database: one line naming the path."""
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database, it is a text file\n" * 200)
    with pytest.raises(StoreUnavailableError) as caught:
        SQLiteStore(path)
    _assert_one_line_naming(caught.value, path)
    assert "not a database" in str(caught.value)


def test_parent_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    """A path under a regular file cannot be created: one line naming the path."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    path = tmp_path / "blocker" / "state.db"
    with pytest.raises(StoreUnavailableError) as caught:
        SQLiteStore(path)
    _assert_one_line_naming(caught.value, path)


def test_path_that_is_a_folder_is_unavailable(tmp_path: Path) -> None:
    """A folder where the file should be cannot be opened: one line naming the path."""
    with pytest.raises(StoreUnavailableError) as caught:
        SQLiteStore(tmp_path)
    _assert_one_line_naming(caught.value, tmp_path)


def test_closed_store_is_unavailable(db_path: Path) -> None:
    """Using a store after close() raises StoreUnavailableError, not a sqlite3 error."""
    store = SQLiteStore(db_path)
    store.close()
    store.close()
    with pytest.raises(StoreUnavailableError) as caught:
        store.get("k")
    _assert_one_line_naming(caught.value, db_path)
