"""The ledger folded into a cube: one row per distinct (day, provider, model, team, project,
purpose, price version, approx, dedupe hit, priced) with its sums.

A 1,000,000-line ledger has a few thousand distinct keys, so the cube is small, every breakdown
of the report is a projection of it, and a cube of many days is the sum of the cubes of each
day — which is what the rollups beside the ledger store.

Parsing has a fast path for the ledger's own line shape (the fields in the order `CostLedger`
writes them, matched by one compiled regex over a whole chunk) and a tolerant path (json) for
anything else: lines from other writers, escaped strings, corrupt or partial lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

# (day, provider, model, team, project, purpose, price_version, approx, dedupe_hit, priced)
Key = tuple[str, str, str, str, str, str, str, bool, bool, bool]
# [calls, cost, input, output, cached, reasoning, saved]
Sums = list[float]
CALLS, COST, INPUT, OUTPUT, CACHED, REASONING, SAVED = range(7)

_FAST = re.compile(
    rb'^\{"ts":"(\d{4}-\d\d-\d\d)T[^"\\\n]*","env":"[^"\\\n]*","request_id":"[^"\\\n]*",'
    rb'"provider":"([^"\\\n]*)","model":"([^"\\\n]*)","team":"([^"\\\n]*)",'
    rb'"project":"([^"\\\n]*)","purpose":"([^"\\\n]*)","input_tokens":(\d+),'
    rb'"output_tokens":(\d+),"cached_tokens":(\d+),"reasoning_tokens":(\d+),'
    rb'"actual_cost_usd":([-+0-9.eE]+),"approx_tokens":(true|false),"price_version":"([^"\\\n]*)",'
    rb'"dedupe_hit":(true|false),"saved_cost_usd":([-+0-9.eE]+),"priced":(true|false)\}$',
    re.MULTILINE,
)


@dataclass(slots=True)
class Cube:
    cells: dict[Key, Sums] = field(default_factory=dict)
    corrupt: int = 0  # lines that are not a ledger record
    partial: int = 0  # a last line cut short (a write in progress, or a crash)

    def add(
        self,
        key: Key,
        calls: float,
        cost: float,
        i: float,
        o: float,
        c: float,
        r: float,
        saved: float,
    ) -> None:
        sums = self.cells.get(key)
        if sums is None:
            self.cells[key] = [calls, cost, i, o, c, r, saved]
        else:
            sums[0] += calls
            sums[1] += cost
            sums[2] += i
            sums[3] += o
            sums[4] += c
            sums[5] += r
            sums[6] += saved

    def merge(self, other: Cube) -> None:
        for key, sums in other.cells.items():
            self.add(key, *sums)
        self.corrupt += other.corrupt
        self.partial += other.partial

    def days(self) -> set[str]:
        return {key[0] for key in self.cells}

    def only_days(self, first: str, last: str) -> Cube:
        """The part of the cube from day `first` to day `last`, both included."""
        kept = {k: list(v) for k, v in self.cells.items() if first <= k[0] <= last}
        return Cube(kept, self.corrupt, self.partial)

    def split_by_day(self) -> dict[str, Cube]:
        out: dict[str, Cube] = {}
        for key, sums in self.cells.items():
            out.setdefault(key[0], Cube()).cells[key] = list(sums)
        return out

    def to_json(self) -> list[list[object]]:
        return [[*key, *sums] for key, sums in self.cells.items()]

    @classmethod
    def from_json(cls, rows: list[list[object]]) -> Cube:
        cube = cls()
        for row in rows:
            key = cast(Key, tuple(row[:10]))
            cube.cells[key] = [float(cast(float, x)) for x in row[10:17]]
        return cube


def fold_chunk(cube: Cube, chunk: bytes) -> None:
    """Fold whole lines (the chunk ends at a newline) into the cube."""
    expected = chunk.count(b"\n")
    matched = 0
    add = cube.add
    for m in _FAST.finditer(chunk):
        (
            day,
            provider,
            model,
            team,
            project,
            purpose,
            i,
            o,
            c,
            r,
            cost,
            approx,
            version,
            dedupe,
            saved,
            priced,
        ) = m.groups()
        add(
            (
                day.decode(),
                provider.decode(),
                model.decode(),
                team.decode(),
                project.decode(),
                purpose.decode(),
                version.decode(),
                approx == b"true",
                dedupe == b"true",
                priced == b"true",
            ),
            1,
            float(cost),
            int(i),
            int(o),
            int(c),
            int(r),
            float(saved),
        )
        matched += 1
    if matched == expected:
        return
    # Some lines are not in our own shape: read those with json, one by one.
    for line in chunk.splitlines():
        if line.strip() and _FAST.match(line) is None:
            _fold_json_line(cube, line)


def _fold_json_line(cube: Cube, line: bytes) -> None:
    try:
        record = json.loads(line)
        ts = record["ts"]
        key: Key = (
            str(ts)[:10],
            str(record["provider"]),
            str(record["model"]),
            str(record["team"]),
            str(record["project"]),
            str(record["purpose"]),
            str(record.get("price_version", "")),
            record.get("approx_tokens") is True,
            record.get("dedupe_hit") is True,
            record.get("priced", True) is not False,
        )
        cube.add(
            key,
            1,
            _num(record.get("actual_cost_usd")),
            _num(record.get("input_tokens")),
            _num(record.get("output_tokens")),
            _num(record.get("cached_tokens")),
            _num(record.get("reasoning_tokens")),
            _num(record.get("saved_cost_usd")),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        cube.corrupt += 1


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return float(value)


class LineChunks:
    """Whole-line chunks of a binary file from `start`, each with the offset just after it.

    Bytes after the last newline are not yielded: they may be a write in progress. After the
    iteration `trailing` says how many there were (a partial line), and a later read picks
    them up from the last offset once they are complete.
    """

    def __init__(self, handle: BinaryIO, *, start: int = 0, size: int = 8 << 20) -> None:
        self._handle = handle
        self._start = start
        self._size = size
        self.trailing = 0

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        self._handle.seek(self._start)
        offset, carry = self._start, b""
        while block := self._handle.read(self._size):
            block = carry + block
            cut = block.rfind(b"\n") + 1
            carry = block[cut:]
            if cut:
                offset += cut
                yield block[:cut], offset
        self.trailing = len(carry)
