"""The ledger folded into per-day statistics, fast and in bounded memory.

Every line lands in two *fine* tables of its day, keyed by raw bytes: *what* (the
provider+model segment, purpose, the approx/price/dedupe segment, priced) and *who* (the
team+project segment), with one dict update in each. The fine tables are collapsed into per-day
marginals (`DayStats`: totals, and sums by team, project, purpose, provider, model,
team/project and price version) whenever they grow large and at the end, so memory stays
bounded however many combinations the ledger holds. A report for a range is the sum of its
days; the rollups beside the ledger store exactly these days.

Parsing has a fast path for the ledger's own line shape (the fields in the order `CostLedger`
writes them, one compiled regex over a whole chunk, every line of it in one `findall`) and a
tolerant path (json) for anything else: lines from other writers, other key orders, spaces,
escaped strings, other timestamp forms, corrupt lines. The fast path takes only lines json
reads, and reads them to the same values (tests/finops/test_fold_fastpath.py checks it shape
by shape): strings without escapes or control characters, in UTF-8; counts without sign or
leading zeros of at most 15 digits (exact as floats, as json's path reads them); finite
non-negative amounts; UTC (`Z`) timestamps of valid times, whose days are checked once each.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from io import BufferedIOBase

DIMENSIONS = ("team", "project", "purpose", "provider", "model")
# Sums kept for every breakdown row: [calls, cost, input tokens, output tokens]
Row = list[float]

# A JSON string that `json.loads` reads back byte for byte: no quote, no backslash (escapes),
# no control character (json rejects raw ones). Written as a positive set (one bitmap test per
# byte, measured ~10% faster than `[^"\\\x00-\x1f]`). Non-ASCII bytes pass only in chunks that
# are valid UTF-8.
_Q = rb'"[ !#-\[\]-\xff]*"'
# (`[0-9]`, not `\d`, all through: measured a little faster in bytes patterns.)
_INT = rb"(?:0|[1-9][0-9]{0,14})"
# A non-negative JSON number that `float()` turns into a finite float exactly as `json` does
# (at most 15 integer digits and a positive exponent of two digits: never an infinity).
_NUM = rb"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?(?:[eE](?:-[0-9]+|\+?[0-9][0-9]?))?"
_BOOL = rb"(?:true|false)"
# Only UTC timestamps (`Z`) the json path reads to the same day take the fast path: valid
# hours, minutes and seconds, 0, 3 or 6 decimals. The day itself is checked once per distinct
# day when the tables are collapsed (`2026-02-30` is corrupt on both paths).
_DAY = rb"([0-9]{4}-[0-9][0-9]-[0-9][0-9])"
_TIME = rb"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{3}(?:[0-9]{3})?)?"
_FAST = re.compile(
    rb'^\{"ts":"' + _DAY + b"T" + _TIME + rb'Z","env":' + _Q + rb',"request_id":' + _Q + rb","
    rb'("provider":' + _Q + rb',"model":' + _Q + rb"),"
    rb'("team":' + _Q + rb',"project":' + _Q + rb'),"purpose":(' + _Q + rb"),"
    rb'"input_tokens":(' + _INT + rb'),"output_tokens":(' + _INT + rb"),"
    # Zero cached/reasoning tokens and a zero saving (most lines) capture nothing (b"").
    rb'"cached_tokens":(?:0|(' + _INT + rb')),"reasoning_tokens":(?:0|(' + _INT + rb")),"
    rb'"actual_cost_usd":(' + _NUM + rb"),"
    rb'("approx_tokens":' + _BOOL + rb',"price_version":' + _Q + rb',"dedupe_hit":' + _BOOL + rb"),"
    rb'"saved_cost_usd":(?:0\.0|(' + _NUM + rb')),"priced":(?:true|(false))\}$',
    re.MULTILINE,
)
# Every line of a chunk in one pass: our own shape, or else the whole line in a 13th group (for
# json). No match crosses a newline, so each line gives exactly one tuple.
_EACH = re.compile(rb"(?:" + _FAST.pattern + rb"|^([^\n]*)$)", re.MULTILINE)
_WHAT = re.compile(r'"provider":"(.*)","model":"(.*)"', re.DOTALL)
_WHO = re.compile(r'"team":"(.*)","project":"(.*)"', re.DOTALL)
_TAIL = re.compile(
    r'"approx_tokens":(true|false),"price_version":"(.*)","dedupe_hit":(true|false)', re.DOTALL
)
_FINE_LIMIT = 50_000  # collapse the fine table beyond this many distinct keys
# Chunks small enough to stay in the CPU's L2 cache from read() through the regex and the loop
# (measured: 128 KiB folds ~13% faster than 1 MiB).
_CHUNK_BYTES = 128 << 10


@dataclass(slots=True)
class DayStats:
    """Everything the report needs about one UTC day. Adding two of them is exact."""

    calls: int = 0
    paid_calls: int = 0
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    dedupe_hits: int = 0
    saved: float = 0.0
    approx_calls: int = 0
    approx_cost: float = 0.0
    unpriced_calls: int = 0
    by: dict[str, dict[str, Row]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})
    spenders: dict[str, Row] = field(default_factory=dict)
    versions: dict[str, Row] = field(default_factory=dict)

    def add(self, other: DayStats) -> None:
        self.calls += other.calls
        self.paid_calls += other.paid_calls
        self.cost += other.cost
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.dedupe_hits += other.dedupe_hits
        self.saved += other.saved
        self.approx_calls += other.approx_calls
        self.approx_cost += other.approx_cost
        self.unpriced_calls += other.unpriced_calls
        for dim, rows in other.by.items():
            _merge_rows(self.by.setdefault(dim, {}), rows)
        _merge_rows(self.spenders, other.spenders)
        _merge_rows(self.versions, other.versions)

    def record_what(
        self,
        provider: str,
        model: str,
        purpose: str,
        flags: tuple[bool, str, bool, bool],
        sums: list[float],
    ) -> None:
        """Fold [calls, cost, in, out, cached, reasoning, saved] of one provider/model/purpose
        and flags combination: the totals and the provider, model, purpose and version rows."""
        approx, version, dedupe, priced = flags
        calls, cost, i, o = int(sums[0]), sums[1], int(sums[2]), int(sums[3])
        self.calls += calls
        self.cost += cost
        self.input_tokens += i
        self.output_tokens += o
        self.cached_tokens += int(sums[4])
        self.reasoning_tokens += int(sums[5])
        if dedupe:
            self.dedupe_hits += calls
            self.saved += sums[6]
        else:
            self.paid_calls += calls
            _bump(self.versions, version or "unknown", calls, cost, i, o)
            if approx:
                self.approx_calls += calls
                self.approx_cost += cost
        if not priced:
            self.unpriced_calls += calls
        _bump(self.by["provider"], provider, calls, cost, i, o)
        _bump(self.by["model"], model, calls, cost, i, o)
        _bump(self.by["purpose"], purpose, calls, cost, i, o)

    def record_who(self, team: str, project: str, sums: list[float]) -> None:
        """Fold [calls, cost, in, out] of one team/project pair."""
        calls, cost, i, o = int(sums[0]), sums[1], int(sums[2]), int(sums[3])
        _bump(self.by["team"], team, calls, cost, i, o)
        _bump(self.by["project"], project, calls, cost, i, o)
        _bump(self.spenders, f"{team} / {project}", calls, cost, i, o)

    def to_json(self) -> dict[str, object]:
        return {
            "totals": [
                self.calls,
                self.paid_calls,
                self.cost,
                self.input_tokens,
                self.output_tokens,
                self.cached_tokens,
                self.reasoning_tokens,
                self.dedupe_hits,
                self.saved,
                self.approx_calls,
                self.approx_cost,
                self.unpriced_calls,
            ],
            "by": self.by,
            "spenders": self.spenders,
            "versions": self.versions,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> DayStats:
        t = data["totals"]
        assert isinstance(t, list)
        stats = cls(
            int(t[0]),
            int(t[1]),
            float(t[2]),
            int(t[3]),
            int(t[4]),
            int(t[5]),
            int(t[6]),
            int(t[7]),
            float(t[8]),
            int(t[9]),
            float(t[10]),
            int(t[11]),
        )
        stats.by = {str(k): dict(v) for k, v in dict(data["by"]).items()}  # type: ignore[call-overload]
        stats.spenders = dict(data["spenders"])  # type: ignore[call-overload]
        stats.versions = dict(data["versions"])  # type: ignore[call-overload]
        return stats


def _bump(table: dict[str, Row], name: str, calls: int, cost: float, i: int, o: int) -> None:
    row = table.get(name)
    if row is None:
        table[name] = [calls, cost, i, o]
    else:
        row[0] += calls
        row[1] += cost
        row[2] += i
        row[3] += o


def _merge_rows(into: dict[str, Row], rows: dict[str, Row]) -> None:
    for name, row in rows.items():
        _bump(into, name, int(row[0]), row[1], int(row[2]), int(row[3]))


@dataclass(slots=True)
class Ledger:
    """Per-day statistics of some ledger lines, plus what could not be read."""

    days: dict[str, DayStats] = field(default_factory=dict)
    corrupt: int = 0
    partial: int = 0

    def add(self, other: Ledger) -> None:
        for day, stats in other.days.items():
            self.days.setdefault(day, DayStats()).add(stats)
        self.corrupt += other.corrupt
        self.partial += other.partial

    def to_json(self) -> dict[str, object]:
        return {"days": {d: s.to_json() for d, s in self.days.items()}, "corrupt": self.corrupt}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Ledger:
        days = data["days"]
        assert isinstance(days, dict)
        corrupt = data.get("corrupt", 0)
        return cls(
            {str(d): DayStats.from_json(s) for d, s in days.items()},
            corrupt if isinstance(corrupt, int) else 0,
        )


class Folder:
    """Folds chunks of ledger bytes into a `Ledger`. Call `finish()` at the end.

    Two small tables per day take every line, keyed by raw bytes: *what* was bought
    (provider+model, purpose, flags) and *who* bought it (team+project). Each has a few
    thousand keys whatever the ledger's size, so a line costs two dict updates, and the tables
    are decoded into `DayStats` once, at the end (or when they grow past a limit).
    """

    def __init__(self, into: Ledger | None = None) -> None:
        self.ledger = into or Ledger()
        # raw day -> {(provider+model, purpose, approx+version+dedupe, priced): sums}
        self._what: dict[bytes, dict[tuple[bytes, bytes, bytes, bytes], list[float]]] = {}
        # raw day -> {team+project: sums}
        self._who: dict[bytes, dict[bytes, list[float]]] = {}
        self._days: dict[bytes, str | None] = {}  # raw day -> checked day (None: not a date)

    def fold(self, chunk: bytes) -> None:
        """Fold whole lines (the chunk ends at a newline)."""
        if chunk.isascii() or _utf8(chunk):
            self._fold_found(_EACH.findall(chunk))
        else:
            # Bytes that are not UTF-8 somewhere: the fast path only for lines that are.
            for line in chunk.split(b"\n"):
                match = _FAST.match(line) if _utf8(line) else None
                if match is not None:
                    self._fold_found([(*match.groups(b""), b"")])
                elif line.strip():
                    self._fold_json(line)
        if sum(map(len, self._what.values())) + sum(map(len, self._who.values())) > _FINE_LIMIT:
            self._collapse()

    def _fold_found(self, found: list[tuple[bytes, ...]]) -> None:
        what_days, who_days = self._what, self._who
        what: dict[tuple[bytes, bytes, bytes, bytes], list[float]] = {}
        who: dict[bytes, list[float]] = {}
        last = None
        # The hot loop of every report: two dict updates per line, in the tables of the line's
        # day (looked up only when the day changes: ledgers are mostly in time order). Cached
        # and reasoning tokens and the saving are b"" when zero (most lines), `priced` when
        # true; `other` is a line not in our shape.
        for day, pm, tp, purpose, i, o, c, r, cost, tail, saved, priced, other in found:
            if day != last:
                if not day:
                    # Split on \n only: a line ending in \r\n is read by json (blank: skipped).
                    if other.strip():
                        self._fold_json(other)
                    continue
                last = day
                what = what_days.get(day) or what_days.setdefault(day, {})
                who = who_days.get(day) or who_days.setdefault(day, {})
            f_cost, n_in, n_out = float(cost), int(i), int(o)
            sums = what.get((pm, purpose, tail, priced))
            if sums is None:
                sums = what[(pm, purpose, tail, priced)] = [0, 0.0, 0, 0, 0, 0, 0.0]
            sums[0] += 1
            sums[1] += f_cost
            sums[2] += n_in
            sums[3] += n_out
            if c:
                sums[4] += int(c)
            if r:
                sums[5] += int(r)
            if saved:
                sums[6] += float(saved)
            rows = who.get(tp)
            if rows is None:
                rows = who[tp] = [0, 0.0, 0, 0]
            rows[0] += 1
            rows[1] += f_cost
            rows[2] += n_in
            rows[3] += n_out

    def finish(self) -> Ledger:
        self._collapse()
        return self.ledger

    def _day(self, day: str) -> DayStats:
        stats = self.ledger.days.get(day)
        if stats is None:
            stats = self.ledger.days[day] = DayStats()
        return stats

    def _checked(self, raw: bytes) -> str | None:
        """The day of fast-path lines, or None when it is no calendar date (json would reject
        such a timestamp: those lines are corrupt)."""
        if raw not in self._days:
            try:
                self._days[raw] = date.fromisoformat(raw.decode()).isoformat()
            except ValueError:
                self._days[raw] = None
        return self._days[raw]

    def _collapse(self) -> None:
        for raw, what in self._what.items():
            day = self._checked(raw)
            if day is None:
                self.ledger.corrupt += sum(int(sums[0]) for sums in what.values())
                continue
            stats = self._day(day)
            for (pm, purpose, tail, priced), sums in what.items():
                provider, model = _pair(_WHAT, pm)
                stats.record_what(
                    provider, model, purpose.decode()[1:-1], _flags(tail, priced), sums
                )
        for raw, who in self._who.items():
            day = self._checked(raw)
            if day is not None:  # else counted corrupt above
                stats = self._day(day)
                for tp, rows in who.items():
                    team, project = _pair(_WHO, tp)
                    stats.record_who(team, project, rows)
        self._what.clear()
        self._who.clear()

    def _fold_json(self, line: bytes) -> None:
        try:
            rec = json.loads(line)
            provider, model, team, project, purpose = (
                str(rec[k]) for k in ("provider", "model", "team", "project", "purpose")
            )
            flags = (
                rec.get("approx_tokens") is True,
                str(rec.get("price_version", "")),
                rec.get("dedupe_hit") is True,
                rec.get("priced", True) is not False,
            )
            sums = [1.0] + [
                _num(rec.get(k))
                for k in (
                    "actual_cost_usd",
                    "input_tokens",
                    "output_tokens",
                    "cached_tokens",
                    "reasoning_tokens",
                    "saved_cost_usd",
                )
            ]
            day = utc_day(str(rec["ts"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OverflowError, RecursionError):
            self.ledger.corrupt += 1
            return
        stats = self._day(day)
        stats.record_what(provider, model, purpose, flags, sums)
        stats.record_who(team, project, sums[:4])


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _pair(pattern: re.Pattern[str], raw: bytes) -> tuple[str, str]:
    found = pattern.fullmatch(raw.decode())
    assert found is not None  # the fast pattern only captures this exact shape
    first, second = found.groups()
    return first, second


def _flags(tail: bytes, priced: bytes) -> tuple[bool, str, bool, bool]:
    found = _TAIL.fullmatch(tail.decode())
    assert found is not None
    approx, version, dedupe = found.groups()
    return approx == "true", version, dedupe == "true", priced != b"false"


def utc_day(ts: str) -> str:
    """The UTC calendar day of an ISO-8601 timestamp (naive ones are taken as UTC)."""
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def _num(value: object) -> float:
    """A count or an amount from a foreign line: absent is 0; NaN, infinities and negatives
    make the line corrupt rather than poison every total."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    number = float(value)  # OverflowError for absurd integers: corrupt too
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


class LineChunks:
    """Whole-line chunks of a binary file between `start` and `stop`, each with the offset
    just after it.

    Bytes after the last newline are not yielded: they may be a write in progress. After the
    iteration `trailing` says how many there were (a partial line), and a later read picks
    them up from the last offset once they are complete.
    """

    def __init__(
        self,
        handle: BufferedIOBase,
        *,
        start: int = 0,
        stop: int | None = None,
        size: int = _CHUNK_BYTES,
    ) -> None:
        self._handle = handle
        self._start = start
        self._stop = stop
        self._size = size
        self.trailing = 0

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        # One buffer filled in place: a chunk costs one copy out of the file and one into the
        # bytes yielded (not four), and only the unfinished line moves to the front.
        self._handle.seek(self._start)
        offset = self._start
        left = None if self._stop is None else self._stop - self._start
        buf = bytearray(self._size)
        have = 0  # bytes of an unfinished line at the front of `buf`
        while left is None or left > 0:
            if have == len(buf):
                buf.extend(bytes(len(buf)))  # a line longer than the buffer: grow it
            want = len(buf) - have if left is None else min(len(buf) - have, left)
            with memoryview(buf) as view:
                got = self._handle.readinto(view[have : have + want])
            if not got:
                break
            if left is not None:
                left -= got
            end = have + got
            cut = buf.rfind(b"\n", 0, end) + 1
            if not cut:
                have = end
                continue
            with memoryview(buf) as view:
                chunk = bytes(view[:cut])
            buf[: end - cut] = buf[cut:end]
            have = end - cut
            offset += cut
            yield chunk, offset
        self.trailing = have
