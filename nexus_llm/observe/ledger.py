"""The cost ledger: one JSONL line per billable call or dedupe hit (DESIGN §4.2)."""

from __future__ import annotations

import operator
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
_VALUES = operator.attrgetter(*_FIELDS)  # every field's value in one C call, in _FIELDS order


class CostLedger:
    def __init__(self, path: str | os.PathLike[str], *, env: str, clock: Clock = utc_now) -> None:
        self._out = JsonlAppender(path)
        self.path = self._out.path
        self._env = env
        self._clock = clock

    def append(self, entry: LedgerEntry) -> dict[str, object]:
        record: dict[str, object] = {"ts": iso_ts(self._clock()), "env": self._env}
        # Flat copy by field name: dataclasses.asdict deep-copies and costs ~6x more per line.
        record.update(zip(_FIELDS, _VALUES(entry), strict=True))
        self._out.append(record)
        return record
