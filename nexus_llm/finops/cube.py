"""The ledger folded into per-day statistics, fast and in bounded memory.

Every line lands in a *fine* table keyed by its raw bytes — (day, the provider..purpose
segment, the approx/price/dedupe segment, priced) — with one dict update per line. The fine
table is collapsed into per-day marginals (`DayStats`: totals, and sums by team, project,
purpose, provider, model, team/project and price version) whenever it grows large and at the
end, so memory stays bounded however many combinations the ledger holds. A report for a range
is the sum of its days; the rollups beside the ledger store exactly these days.

Parsing has a fast path for the ledger's own line shape (the fields in the order `CostLedger`
writes them, one compiled regex over a whole chunk) and a tolerant path (json) for anything
else: lines from other writers, escaped strings, corrupt lines.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

DIMENSIONS = ("team", "project", "purpose", "provider", "model")
# Sums kept for every breakdown row: [calls, cost, input tokens, output tokens]
Row = list[float]

_Q = rb'"[^"\\\n]*"'  # a JSON string without escapes (tags and ids never need them)
_NUM = rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"  # a JSON number: float() always accepts it
# Only UTC timestamps (`Z`) take the fast path; others are converted by the json path.
_FAST = re.compile(
    rb'^\{"ts":"(\d{4}-\d\d-\d\d)T[0-9:.]*Z","env":' + _Q + rb',"request_id":' + _Q + rb","
    rb'("provider":' + _Q + rb',"model":' + _Q + rb"),"
    rb'("team":' + _Q + rb',"project":' + _Q + rb'),"purpose":(' + _Q + rb"),"
    rb'"input_tokens":(\d+),"output_tokens":(\d+),"cached_tokens":(\d+),'
    rb'"reasoning_tokens":(\d+),"actual_cost_usd":(' + _NUM + rb"),"
    rb'("approx_tokens":(?:true|false),"price_version":' + _Q + rb',"dedupe_hit":(?:true|false)),'
    rb'"saved_cost_usd":(' + _NUM + rb'),"priced":(true|false)\}$',
    re.MULTILINE,
)
_WHAT = re.compile(r'"provider":"(.*)","model":"(.*)"')
_WHO = re.compile(r'"team":"(.*)","project":"(.*)"')
_TAIL = re.compile(r'"approx_tokens":(true|false),"price_version":"(.*)","dedupe_hit":(true|false)')
_FINE_LIMIT = 50_000  # collapse the fine table beyond this many distinct keys


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

    Two small tables take every line, keyed by raw bytes: *what* was bought (day,
    provider+model, purpose, flags) and *who* bought it (day, team+project). Each has a few
    thousand keys whatever the ledger's size, so a line costs two dict updates, and the tables
    are decoded into `DayStats` once, at the end (or when they grow past a limit).
    """

    def __init__(self, into: Ledger | None = None) -> None:
        self.ledger = into or Ledger()
        self._what: dict[tuple[bytes, bytes, bytes, bytes, bytes], list[float]] = {}
        self._who: dict[tuple[bytes, bytes], list[float]] = {}

    def fold(self, chunk: bytes) -> None:
        """Fold whole lines (the chunk ends at a newline)."""
        what, who = self._what, self._who
        found = _FAST.findall(chunk)
        to_float, to_int = float, int
        # The hot loop of every report.
        for day, pm, tp, purpose, i, o, c, r, cost, tail, saved, priced in found:
            f_cost, n_in, n_out = to_float(cost), to_int(i), to_int(o)
            key = (day, pm, purpose, tail, priced)
            sums = what.get(key)
            if sums is None:
                what[key] = [1, f_cost, n_in, n_out, to_int(c), to_int(r), to_float(saved)]
            else:
                sums[0] += 1
                sums[1] += f_cost
                sums[2] += n_in
                sums[3] += n_out
                if c != b"0":
                    sums[4] += to_int(c)
                if r != b"0":
                    sums[5] += to_int(r)
                if saved != b"0.0":
                    sums[6] += to_float(saved)
            pair = (day, tp)
            rows = who.get(pair)
            if rows is None:
                who[pair] = [1, f_cost, n_in, n_out]
            else:
                rows[0] += 1
                rows[1] += f_cost
                rows[2] += n_in
                rows[3] += n_out
        if len(found) != chunk.count(b"\n"):
            # Some lines are not in our own shape: read those with json, one by one.
            # Split on \n only: a line ending in \r\n must not pass for one already counted.
            for line in chunk.split(b"\n"):
                if line.strip() and _FAST.match(line) is None:
                    self._fold_json(line)
        if len(what) + len(who) > _FINE_LIMIT:
            self._collapse()

    def finish(self) -> Ledger:
        self._collapse()
        return self.ledger

    def _day(self, day: str) -> DayStats:
        stats = self.ledger.days.get(day)
        if stats is None:
            stats = self.ledger.days[day] = DayStats()
        return stats

    def _collapse(self) -> None:
        for (day, pm, purpose, tail, priced), sums in self._what.items():
            provider, model = _pair(_WHAT, pm)
            self._day(day.decode()).record_what(
                provider, model, purpose.decode()[1:-1], _flags(tail, priced), sums
            )
        for (day, tp), rows in self._who.items():
            team, project = _pair(_WHO, tp)
            self._day(day.decode()).record_who(team, project, rows)
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


def _pair(pattern: re.Pattern[str], raw: bytes) -> tuple[str, str]:
    found = pattern.fullmatch(raw.decode("utf-8", "replace"))
    assert found is not None  # the fast pattern only captures this exact shape
    first, second = found.groups()
    return first, second


def _flags(tail: bytes, priced: bytes) -> tuple[bool, str, bool, bool]:
    found = _TAIL.fullmatch(tail.decode("utf-8", "replace"))
    assert found is not None
    approx, version, dedupe = found.groups()
    return approx == "true", version, dedupe == "true", priced == b"true"


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
        self, handle: BinaryIO, *, start: int = 0, stop: int | None = None, size: int = 1 << 20
    ) -> None:
        self._handle = handle
        self._start = start
        self._stop = stop
        self._size = size
        self.trailing = 0

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        self._handle.seek(self._start)
        offset, carry = self._start, b""
        left = None if self._stop is None else self._stop - self._start
        while left is None or left > 0:
            block = self._handle.read(self._size if left is None else min(self._size, left))
            if not block:
                break
            if left is not None:
                left -= len(block)
            block = carry + block
            cut = block.rfind(b"\n") + 1
            carry = block[cut:]
            if cut:
                offset += cut
                yield block[:cut], offset
        self.trailing = len(carry)
