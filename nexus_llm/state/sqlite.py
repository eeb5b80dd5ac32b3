"""A state store in one SQLite file: the embedded default, safe across processes on one host."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .base import StoreUnavailableError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nexus_state (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL
) WITHOUT ROWID
"""
_UPSERT = (
    "INSERT INTO nexus_state (key, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
# Expired rows are purged when touched; this sweep catches the ones nobody touches again.
_SWEEP_INTERVAL_S = 60.0
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# A cached read is trusted this long at most even when no change mark moved: the bound on
# staleness for a writer that does not move the mark (another tool, a process that died between
# its commit and the mark). Cooperating writers are seen at once.
READ_CACHE_MAX_AGE_S = 1.0
_READ_CACHE_MAX_KEYS = 4096
_MARK_BYTES = 8


class SQLiteStore:
    """A `StateStore` in a SQLite file (WAL mode), shared by every process that opens the path.

    Each process opens its own connection. Within a process all threads share that one
    connection behind a lock: SQLite lets only one writer in at a time anyway, and every
    operation here is a few microseconds, so per-thread connections would buy little and leave
    connections of finished threads open. A process forked with a store open opens a fresh
    connection on first use (SQLite connections must not cross a fork).

    Conditional writes run in `BEGIN IMMEDIATE` transactions, so the read and the write are one
    atomic step across processes; a writer waits for another one up to `busy_timeout_s`.
    Expiry is measured on `clock`; expired rows are absent, purged when touched and swept about
    once a minute.

    Reads are cached, and the cache is exact: every write transaction, in any process, ends by
    replacing a random token in a small file beside the database (``<path>-changes``, named
    after the real file, with the database's permissions). A `get` whose token has not moved
    since its last SQL read answers from memory (one 8-byte read, no file lock: the breaker
    reads its state on every call); a moved token drops the whole cache. Writes always read
    inside their own transaction, never from the cache. A store that cannot open the mark reads
    SQLite every time, and its writes reach the others' caches within `cache_max_age_s`.

    Args:
        path: the database file; missing parent folders are created.
        clock: seconds, for TTLs (inject a fake one in tests).
        busy_timeout_s: how long to wait for another process's write before giving up with
            `StoreUnavailableError`.
        cache_max_age_s: the longest a cached read is trusted without the change mark moving.

    Raises:
        StoreUnavailableError: the file cannot be created, opened or written, or is not a
            SQLite database — a one-line message naming the path.
    """

    name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = 5.0,
        cache_max_age_s: float = READ_CACHE_MAX_AGE_S,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._next_sweep = float("-inf")
        self._pid = os.getpid()
        # Connections inherited through fork(): kept referenced and never closed here, because
        # closing one in the child could checkpoint or remove the WAL the parent still uses.
        self._inherited: list[sqlite3.Connection] = []
        self._conn = self._open()
        self._changes = _ChangeMark.open(self.path)
        self._cache_max_age_s = cache_max_age_s
        # (token when filled, monotonic time when filled, key -> (value, expires_at)); replaced
        # whole, so a thread never sees entries of one token under another.
        self._cache: tuple[bytes, float, dict[str, tuple[bytes | None, float | None]]] = (
            b"",
            float("-inf"),
            {},
        )

    def get(self, key: str) -> bytes | None:
        # The token is read before the SQL read, and writers move it after they commit: any
        # commit the SQL read missed moves the token after this point.
        token = self._token()
        if token is None:
            with self._session() as conn:
                return self._live(conn, key, self._clock())
        filled_token, filled_at, entries = self._cache
        now = time.monotonic()
        if token != filled_token or now - filled_at >= self._cache_max_age_s:
            entries = {}
            self._cache = (token, now, entries)
        else:
            hit = entries.get(key)
            if hit is not None and (hit[1] is None or hit[1] > self._clock()):
                return hit[0]
        with self._session() as conn:
            row = self._live_row(conn, key, self._clock())
        if len(entries) < _READ_CACHE_MAX_KEYS:
            entries[key] = row
        return row[0]

    def _token(self) -> bytes | None:
        """The change mark's token; None without a mark, or when it was closed meanwhile."""
        changes = self._changes
        if changes is None:
            return None
        try:
            return changes.read()
        except OSError:
            return None

    def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        with self._write() as (conn, now):
            conn.execute(_UPSERT, (key, value, _expiry(now, ttl_s)))

    def add(self, key: str, value: bytes, *, ttl_s: float) -> bool:
        with self._write() as (conn, now):
            if self._live(conn, key, now) is not None:
                return False
            conn.execute(_UPSERT, (key, value, _expiry(now, ttl_s)))
            return True

    def compare_and_swap(
        self, key: str, expected: bytes | None, new: bytes, *, ttl_s: float | None = None
    ) -> bool:
        with self._write() as (conn, now):
            if self._live(conn, key, now) != expected:
                return False
            conn.execute(_UPSERT, (key, new, _expiry(now, ttl_s)))
            return True

    def delete(self, key: str, *, only_if: bytes | None = None) -> bool:
        with self._write() as (conn, now):
            current = self._live(conn, key, now)
            if current is None or (only_if is not None and current != only_if):
                return False
            conn.execute("DELETE FROM nexus_state WHERE key = ?", (key,))
            return True

    def close(self) -> None:
        with self._lock:  # writes move the mark under this lock: none is moving it now
            changes, self._changes = self._changes, None
            if changes is not None:
                changes.close()
            self._conn.close()

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            reason = f"cannot create folder {self.path.parent}: a file is in the way"
            raise self._unavailable(reason) from exc
        except OSError as exc:
            reason = f"cannot create folder {self.path.parent}: {exc.strerror or exc}"
            raise self._unavailable(reason) from exc
        if self.path.is_dir():
            raise self._unavailable("is a folder, not a database file")
        try:
            # isolation_level=None: no implicit transactions; we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._unavailable(str(exc)) from exc
        try:
            self._prepare(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self._unavailable(str(exc)) from exc
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # Switching a fresh file to WAL takes an exclusive lock and may report "locked" at once
        # (not through the busy handler) while other processes open the same file.
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is safe from corruption in WAL mode; a power cut may lose the last
                # writes, which for breaker state, dedupe entries and locks is acceptable.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._unavailable(str(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        with self._session() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Read the clock once the write lock is held, so "now" is ordered with the
                # other processes' writes.
                now = self._clock()
                yield conn, now
                if now >= self._next_sweep:
                    conn.execute(
                        "DELETE FROM nexus_state WHERE expires_at IS NOT NULL AND expires_at <= ?",
                        (now,),
                    )
                    self._next_sweep = now + _SWEEP_INTERVAL_S
                conn.execute("COMMIT")
                if self._changes is not None:
                    self._changes.move()
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _live(self, conn: sqlite3.Connection, key: str, now: float) -> bytes | None:
        return self._live_row(conn, key, now)[0]

    def _live_row(
        self, conn: sqlite3.Connection, key: str, now: float
    ) -> tuple[bytes | None, float | None]:
        """The live value and its expiry; (None, None) when absent or expired (then purged)."""
        row = conn.execute(
            "SELECT value, expires_at FROM nexus_state WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None, None
        value, expires_at = row
        if expires_at is not None and expires_at <= now:
            # The condition keeps a value another process has just renewed.
            conn.execute(
                "DELETE FROM nexus_state WHERE key = ? AND expires_at <= ?", (key, expires_at)
            )
            return None, None
        return bytes(value), expires_at

    def _after_fork(self) -> None:
        self._inherited.append(self._conn)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conn = self._open()

    def _unavailable(self, reason: str) -> StoreUnavailableError:
        reason = " ".join(reason.split()) or "unknown error"
        return StoreUnavailableError(f"state store {self.path}: {reason}")


class _ChangeMark:
    """A random token in a file beside the database, read and replaced with one syscall each.

    Plain pread/pwrite rather than a memory map: a mapped file that someone truncates kills
    the process with SIGBUS on the next read; a short read is just a new token.
    """

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def open(cls, database: Path) -> _ChangeMark | None:
        """The mark of `database` (created if missing), or None when there is no file to mark
        or the mark cannot be opened: the store then reads SQLite every time."""
        if str(database) in ("", ":memory:") or str(database).startswith("file:"):
            return None
        real = os.path.realpath(database)  # a symlinked path marks the file it points at
        try:
            mode = os.stat(real).st_mode & 0o666  # whoever may write the database, the mark
        except OSError:
            mode = 0o640
        try:
            fd = os.open(f"{real}-changes", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        except OSError:
            return None
        return cls(fd)

    def read(self) -> bytes:
        return os.pread(self._fd, _MARK_BYTES, 0)

    def move(self) -> None:
        # Random, not a counter: two writers racing cannot land on a value a reader has seen;
        # from the OS, not a seeded generator, which forked processes would share.
        with suppress(OSError):  # the commit stands; readers' age bound covers it
            os.pwrite(self._fd, os.urandom(_MARK_BYTES), 0)

    def close(self) -> None:
        os.close(self._fd)


def _expiry(now: float, ttl_s: float | None) -> float | None:
    return None if ttl_s is None else now + ttl_s


def _is_busy(exc: sqlite3.Error) -> bool:
    return (exc.sqlite_errorcode & 0xFF) in _BUSY_CODES
