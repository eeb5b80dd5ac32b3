"""The anomaly window: per-minute buckets folded from the audit log and the cost ledger, read
incrementally from a checkpoint.

A scheduled run (every 5 minutes) must not re-read a million-line audit log each time. The
checkpoint beside the audit log (`<audit>.anomaly.json`) keeps, for each of the two files, its
identity (device, inode, a hash of its first line) and the byte offset read up to, together with
what was folded from those bytes:

- cost in USD per minute per (team, project), from the ledger;
- rate-limit answers per minute per provider, from `llm_error` events (every attempt): HTTP
  429, or a rate-limit error a provider sent inside a 200 (mid-stream), which only its
  `error_type` names;
- each provider's breaker trace (open / half-open / closed, and since when it has not been
  closed), from the `breaker_*` events — a trace, not a window: a breaker opened yesterday and
  never closed is still open.

The next run reads only the bytes appended since. A file grown longer is read from its offset;
a file rotated away (renamed, or copied and truncated by logrotate, even compressed) is found
among its rotations by its first line and read to its end before the new file is read from the
start; a file truncated in place is read from the start. Minutes older than the retention are
dropped, so the checkpoint stays small. Timestamps are compared as text (`YYYY-MM-DDTHH:MM`,
UTC), which is both what every line carries and far cheaper than parsing dates.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from ..errors import is_rate_limited
from ..observe.jsonl import rotations

CHECKPOINT_SUFFIX = ".anomaly.json"
_Fold = Callable[[dict[str, object], str], None]
_Wanted = Callable[[bytes], bool]
_FORMAT = 1
_HEAD_BYTES = 4096
_CHUNK = 8 << 20
_TS_KEY = b'"ts":"'
_TS_SPACED = re.compile(rb'"ts"\s*:\s*"')
_SEP = "\t"


def minute_of(moment: datetime) -> str:
    """The bucket key of a moment: `YYYY-MM-DDTHH:MM` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _line_minute(line: bytes) -> str | None:
    at = line.find(_TS_KEY)
    if at >= 0:
        start = at + len(_TS_KEY)
    else:
        # Another writer's spacing (`"ts": "…"`): slower, and rare.
        found = _TS_SPACED.search(line)
        if found is None:
            return None
        start = found.end()
    text = line[start : start + 16]
    # YYYY-MM-DDTHH:MM, or the line is damaged: anything else would sort among real minutes.
    if (
        len(text) != 16
        or text[4:5] != b"-"
        or text[7:8] != b"-"
        or text[10:11] != b"T"
        or text[13:14] != b":"
        or not (text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16]).isdigit()
    ):
        return None
    return text.decode("ascii")


@dataclass(slots=True)
class BreakerTrace:
    state: str  # "open" | "half_open" | "closed"
    since: str | None  # UTC ISO ts of the first open after the last close; None when closed
    last: str  # ts of the last transition seen


@dataclass(slots=True)
class WindowData:
    """What the rules look at, folded from the files."""

    cost: dict[str, dict[str, float]] = field(default_factory=dict)  # minute → team\tproject
    rate_limited: dict[str, dict[str, int]] = field(default_factory=dict)  # minute → provider
    breakers: dict[str, BreakerTrace] = field(default_factory=dict)
    covered_from: str = ""  # the oldest minute that is complete in the buckets ("" = all)

    def fold_ledger(self, record: dict[str, object], minute: str) -> None:
        cost = record.get("actual_cost_usd")
        if not isinstance(cost, int | float) or isinstance(cost, bool) or cost <= 0:
            return
        key = f"{record.get('team', '')}{_SEP}{record.get('project', '')}"
        bucket = self.cost.setdefault(minute, {})
        bucket[key] = bucket.get(key, 0.0) + float(cost)

    def fold_audit(self, record: dict[str, object], minute: str) -> None:
        event = record.get("event")
        provider = str(record.get("provider") or "unknown")
        if event == "llm_error" and is_rate_limited(record.get("status"), record.get("error_type")):
            bucket = self.rate_limited.setdefault(minute, {})
            bucket[provider] = bucket.get(provider, 0) + 1
        elif event in ("breaker_open", "breaker_half_open", "breaker_closed"):
            ts = str(record.get("ts", ""))
            trace = self.breakers.get(provider)
            if event == "breaker_closed":
                self.breakers[provider] = BreakerTrace("closed", None, ts)
            elif trace is None or trace.state == "closed" or trace.since is None:
                state = "open" if event == "breaker_open" else "half_open"
                self.breakers[provider] = BreakerTrace(state, ts, ts)
            else:
                trace.state = "open" if event == "breaker_open" else "half_open"
                trace.last = ts

    def prune(self, cutoff: str) -> None:
        """Forget the minutes at or before `cutoff`."""
        for buckets in (self.cost, self.rate_limited):
            for minute in [m for m in buckets if m <= cutoff]:
                del buckets[minute]
        if cutoff >= self.covered_from:
            self.covered_from = _next_minute(cutoff)

    def cost_by_tags(self, after: str) -> dict[tuple[str, str], float]:
        """USD per (team, project) over the minutes after `after`."""
        totals: dict[tuple[str, str], float] = {}
        for minute, bucket in self.cost.items():
            if minute > after:
                for key, usd in bucket.items():
                    team, _, project = key.partition(_SEP)
                    totals[(team, project)] = totals.get((team, project), 0.0) + usd
        return totals

    def rate_limited_by_provider(self, after: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for minute, bucket in self.rate_limited.items():
            if minute > after:
                for provider, n in bucket.items():
                    totals[provider] = totals.get(provider, 0) + n
        return totals

    def to_json(self) -> dict[str, object]:
        return {
            "cost": self.cost,
            "rate_limited": self.rate_limited,
            "breakers": {
                p: {"state": t.state, "since": t.since, "last": t.last}
                for p, t in self.breakers.items()
            },
            "covered_from": self.covered_from,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WindowData:
        cost = data["cost"]
        rate_limited = data["rate_limited"]
        breakers = data["breakers"]
        assert isinstance(cost, dict)
        assert isinstance(rate_limited, dict)
        assert isinstance(breakers, dict)
        return cls(
            cost={str(m): {str(k): float(v) for k, v in b.items()} for m, b in cost.items()},
            rate_limited={
                str(m): {str(k): int(v) for k, v in b.items()} for m, b in rate_limited.items()
            },
            breakers={
                str(p): BreakerTrace(str(t["state"]), t["since"], str(t["last"]))
                for p, t in breakers.items()
            },
            covered_from=str(data.get("covered_from", "")),
        )


def _next_minute(minute: str) -> str:
    moment = datetime.strptime(minute, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    return minute_of(moment + timedelta(minutes=1))


@dataclass(slots=True)
class Cursor:
    """How far one file has been read, and which file that was."""

    dev: int = 0
    ino: int = 0
    head: str = ""  # sha256 of the first line
    offset: int = 0


@dataclass(slots=True)
class ScanStats:
    bytes_read: int = 0
    lines_read: int = 0
    corrupt: int = 0
    from_checkpoint: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Scan:
    data: WindowData
    stats: ScanStats
    cursors: dict[str, Cursor]


def checkpoint_path_for(audit_path: Path) -> Path:
    return audit_path.with_name(audit_path.name + CHECKPOINT_SUFFIX)


class WindowReader:
    """Reads the audit log and the ledger into `WindowData`, from a checkpoint when it can.

    Args:
        audit_path, ledger_path: the live files (their rotations are found beside them).
        retention_min: how many minutes of buckets to keep (at least the longest window used).
        checkpoint_path: where the checkpoint lives; None disables checkpoints.
    """

    def __init__(
        self,
        audit_path: Path,
        ledger_path: Path,
        *,
        retention_min: float,
        checkpoint_path: Path | None = None,
    ) -> None:
        self.audit_path = audit_path
        self.ledger_path = ledger_path
        self.retention_min = retention_min
        self.checkpoint_path = checkpoint_path

    def scan(self, now: datetime, *, need_min: float, save: bool = True) -> Scan:
        """Fold everything new; `need_min` is the longest window this run evaluates.

        A checkpoint whose buckets do not reach back `need_min` minutes (a wider window than
        the one it was kept for) is set aside and everything is read from scratch.
        """
        cutoff = minute_of(now - timedelta(minutes=max(self.retention_min, need_min)))
        needed_from = _next_minute(minute_of(now - timedelta(minutes=need_min)))
        saved = self._load() if self.checkpoint_path else None
        stats = ScanStats()
        if saved is not None and saved[0].covered_from <= needed_from:
            data, cursors = saved
            stats.from_checkpoint = True
        else:
            if saved is not None:
                stats.notes.append("window wider than the checkpoint keeps: read from scratch")
            data, cursors = WindowData(covered_from=_next_minute(cutoff)), {}
        for role, path in (("audit", self.audit_path), ("ledger", self.ledger_path)):
            cursors[role] = self._read(role, path, cursors.get(role), data, cutoff, stats)
        data.prune(cutoff)
        if save and self.checkpoint_path is not None:
            self._store(data, cursors)
        return Scan(data, stats, cursors)

    # -- reading ------------------------------------------------------------------------------

    def _read(
        self,
        role: str,
        path: Path,
        cursor: Cursor | None,
        data: WindowData,
        cutoff: str,
        stats: ScanStats,
    ) -> Cursor:
        fold = data.fold_audit if role == "audit" else data.fold_ledger
        wanted = _audit_line_wanted if role == "audit" else None
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            # Rotated away and not re-created yet: finish the rotated file now, and read the
            # new one from its start when it appears.
            if cursor is not None and cursor.offset:
                self._finish_rotated(path, cursor, fold, wanted, cutoff, stats, role)
            return Cursor()
        with handle:
            st = os.fstat(handle.fileno())
            head = _head_hash(handle)
            start = 0
            if cursor is not None and cursor.offset:
                same = (cursor.dev, cursor.ino, cursor.head) == (st.st_dev, st.st_ino, head)
                if same and st.st_size >= cursor.offset:
                    start = cursor.offset
                else:
                    self._finish_rotated(path, cursor, fold, wanted, cutoff, stats, role)
            offset = _fold_lines(handle, start, fold, wanted, cutoff, stats, role)
            return Cursor(st.st_dev, st.st_ino, head, offset)

    def _finish_rotated(
        self,
        path: Path,
        cursor: Cursor,
        fold: _Fold,
        wanted: _Wanted | None,
        cutoff: str,
        stats: ScanStats,
        role: str,
    ) -> None:
        """Read the rest of the file the cursor was on, if it was rotated away, and every
        rotation newer than it (several rotations may have happened between two runs).

        A rotation is read whole into a list before anything is folded, so a compressed copy
        that fails halfway (logrotate still writing `x.1.gz` beside `x.1`) adds nothing; and a
        rotation with the same first line as one already read is the same file in another form.
        """
        siblings = rotations(path)  # oldest first
        matches = [i for i, p in enumerate(siblings) if _head_of(p) == cursor.head]
        # Prefer the uncompressed copy of the cursor's file; then the newest.
        matches.sort(key=lambda i: (siblings[i].suffix != ".gz", i))
        for index in reversed(matches):
            lines = _whole_lines(siblings[index], cursor.offset)
            if lines is None:
                continue
            _fold_each(lines, fold, wanted, cutoff, stats, role)
            stats.notes.append(f"{role}: finished the rotated {siblings[index].name}")
            seen = {cursor.head}
            for newer in siblings[max(matches) + 1 :]:
                head = _head_of(newer)
                if head in seen:
                    continue
                whole = _whole_lines(newer, 0)
                if whole is None:
                    stats.notes.append(f"{role}: could not read the rotated {newer.name}")
                    continue
                seen.add(head or "")
                _fold_each(whole, fold, wanted, cutoff, stats, role)
                stats.notes.append(f"{role}: read the rotated {newer.name}")
            return
        stats.notes.append(f"{role}: file replaced or truncated; read from the start")

    # -- the checkpoint -----------------------------------------------------------------------

    def _load(self) -> tuple[WindowData, dict[str, Cursor]] | None:
        assert self.checkpoint_path is not None
        try:
            saved = json.loads(self.checkpoint_path.read_text("utf-8"))
            if saved.get("format") != _FORMAT or saved.get("files") != self._files_key():
                return None
            cursors = {role: Cursor(**c) for role, c in saved["cursors"].items()}
            return WindowData.from_json(saved["data"]), cursors
        except (OSError, ValueError, KeyError, TypeError, AttributeError, AssertionError):
            return None  # none yet, or damaged: read from scratch

    def _store(self, data: WindowData, cursors: dict[str, Cursor]) -> None:
        assert self.checkpoint_path is not None
        target = self.checkpoint_path
        saved = {
            "format": _FORMAT,
            "files": self._files_key(),
            "cursors": {
                role: {"dev": c.dev, "ino": c.ino, "head": c.head, "offset": c.offset}
                for role, c in cursors.items()
            },
            "data": data.to_json(),
        }
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        except OSError:
            return  # a read-only directory: every run reads from scratch, nothing else lost
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(saved, out, separators=(",", ":"))
            os.replace(temp, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)

    def _files_key(self) -> list[str]:
        return [str(self.audit_path.resolve()), str(self.ledger_path.resolve())]


def _audit_line_wanted(line: bytes) -> bool:
    """Only rate limits and breaker transitions matter; skip the rest without parsing."""
    if b'"breaker_' in line:
        return True
    return b'"llm_error"' in line and (
        b"429" in line or b'"rate_limit"' in line or b'"quota_exhausted"' in line
    )


def _open_binary(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _head_hash(handle: BinaryIO) -> str:
    """A file's identity beyond its inode: its first line, or its first 4 KiB when the first
    line is longer (a logged prompt); "" while not even that is complete."""
    handle.seek(0)
    head = handle.read(_HEAD_BYTES)
    end = head.find(b"\n")
    first = head[: end + 1] if end >= 0 else (head if len(head) == _HEAD_BYTES else b"")
    return hashlib.sha256(first).hexdigest() if first else ""


def _head_of(path: Path) -> str | None:
    try:
        with _open_binary(path) as handle:
            return _head_hash(handle)
    except (OSError, EOFError, zlib.error):
        return None


def _whole_lines(path: Path, start: int) -> list[bytes] | None:
    """Every complete line of `path` from `start`, or None when it cannot be read to its end."""
    try:
        with _open_binary(path) as handle:
            return list(_complete_lines(handle, start))
    except (OSError, EOFError, zlib.error):
        return None


def _fold_lines(
    handle: BinaryIO,
    start: int,
    fold: _Fold,
    wanted: _Wanted | None,
    cutoff: str,
    stats: ScanStats,
    role: str,
) -> int:
    """Fold the complete lines from `start`; returns the offset after the last complete line."""
    offset = start
    for line in _complete_lines(handle, start):
        offset += len(line) + 1
        _fold_one(line, fold, wanted, cutoff, stats, role)
    return offset


def _fold_each(
    lines: list[bytes],
    fold: _Fold,
    wanted: _Wanted | None,
    cutoff: str,
    stats: ScanStats,
    role: str,
) -> None:
    for line in lines:
        _fold_one(line, fold, wanted, cutoff, stats, role)


def _fold_one(
    line: bytes, fold: _Fold, wanted: _Wanted | None, cutoff: str, stats: ScanStats, role: str
) -> None:
    """One line: counted, prefiltered, dated, parsed, folded."""
    stats.lines_read += 1
    stats.bytes_read += len(line) + 1
    if wanted is not None and not wanted(line):
        return
    minute = _line_minute(line)
    if minute is None:
        stats.corrupt += 1 if line.strip() else 0
        return
    breaker = role == "audit" and b'"breaker_' in line
    if minute <= cutoff and not breaker:
        return  # too old for any window (breaker traces are kept regardless of age)
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        stats.corrupt += 1
        return
    if isinstance(record, dict):
        fold(record, minute)
    else:
        stats.corrupt += 1


def _complete_lines(handle: BinaryIO, start: int) -> Iterator[bytes]:
    """Lines (without their newline) from `start`; a last line with no newline is left."""
    handle.seek(start)
    rest = b""
    while chunk := handle.read(_CHUNK):
        block = rest + chunk
        end = block.rfind(b"\n")
        if end < 0:
            rest = block
            continue
        rest = block[end + 1 :]
        yield from block[:end].split(b"\n")
