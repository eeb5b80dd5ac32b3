"""The cost ledger: one JSONL line per billable call or dedupe hit (DESIGN §4.2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .audit import Clock, iso_ts, utc_now
from .jsonl import JsonlAppender


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    request_id: str
    provider: str
    model: str
    team: str
    project: str
    purpose: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    actual_cost_usd: float
    approx_tokens: bool
    price_version: str
    dedupe_hit: bool = False
    saved_cost_usd: float = 0.0
    priced: bool = True


_FIELDS = tuple(f.name for f in fields(LedgerEntry))


class CostLedger:
    def __init__(self, path: str | os.PathLike[str], *, env: str, clock: Clock = utc_now) -> None:
        self._out = JsonlAppender(path)
        self.path = self._out.path
        self._env = env
        self._clock = clock

    def append(self, entry: LedgerEntry) -> dict[str, object]:
        record: dict[str, object] = {"ts": iso_ts(self._clock()), "env": self._env}
        # Flat copy by field name: dataclasses.asdict deep-copies and costs ~4x more per line.
        record.update((name, getattr(entry, name)) for name in _FIELDS)
        self._out.append(record)
        return record
