"""Ledgers for the FinOps tests: hand-made calls written by `CostLedger`, a hand-computed data
set, and reports reduced to values that can be compared."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from nexus_llm.finops.report import Line, Report, build_report
from nexus_llm.observe.ledger import CostLedger, LedgerEntry

FIRST, LAST = date(2026, 1, 1), date(2026, 1, 5)


@dataclass(frozen=True, slots=True)
class Call:
    """One ledger line to write; `ts` is UTC with a `Z`, as `CostLedger` writes it."""

    ts: str
    provider: str = "gemini"
    model: str = "gemini-2.5-flash"
    team: str = "ops"
    project: str = "finops"
    purpose: str = "ops"
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cached: int = 0
    reasoning: int = 0
    approx: bool = False
    version: str = "2026-01"
    dedupe: bool = False
    saved: float = 0.0
    priced: bool = True


def moment(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def write_calls(path: Path, calls: Iterable[Call]) -> list[dict[str, object]]:
    """Append the calls with `CostLedger` itself, its clock pinned to each call's `ts`."""
    now: list[datetime] = []
    ledger = CostLedger(path, env="test", clock=lambda: now[-1])
    written = []
    for n, call in enumerate(calls):
        now.append(moment(call.ts))
        entry = LedgerEntry(
            request_id=f"req-{path.stem}-{n}",
            provider=call.provider,
            model=call.model,
            team=call.team,
            project=call.project,
            purpose=call.purpose,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cached_tokens=call.cached,
            reasoning_tokens=call.reasoning,
            actual_cost_usd=call.cost,
            approx_tokens=call.approx,
            price_version=call.version,
            dedupe_hit=call.dedupe,
            saved_cost_usd=call.saved,
            priced=call.priced,
        )
        written.append(ledger.append(entry))
    return written


# The hand-computed data set: 2026-01-01..05 has calls on the 1st, 2nd and 4th (the 3rd and 5th
# are quiet); one call just before and one just after the range must never count. Costs are
# binary fractions, so every sum below is exact.
CALLS = [
    Call("2025-12-31T23:59:59.999Z", cost=100.0, input_tokens=7, output_tokens=7),  # outside
    # 2026-01-01
    Call("2026-01-01T00:00:00.000Z", input_tokens=100, output_tokens=50, cost=0.25, cached=10),
    Call(
        "2026-01-01T12:00:00.000Z",
        provider="openai",
        model="gpt-4o",
        team="search",
        project="web",
        purpose="support",
        input_tokens=1000,
        output_tokens=200,
        cost=2.0,
        reasoning=30,
    ),
    Call("2026-01-01T18:00:00.000Z", dedupe=True, saved=0.25),
    # 2026-01-02
    Call(
        "2026-01-02T09:00:00.000Z",
        team="search",
        purpose="support",
        input_tokens=400,
        output_tokens=100,
        cost=0.5,
        approx=True,
    ),
    Call(
        "2026-01-02T10:00:00.000Z",
        provider="openai",
        model="gpt-4o",
        project="web",
        input_tokens=2000,
        output_tokens=400,
        cost=4.0,
        cached=100,
        version="2026-02",
    ),
    Call(
        "2026-01-02T11:00:00.000Z",
        provider="openai",
        model="gpt-5-new",
        project="web",
        purpose="support",
        input_tokens=300,
        output_tokens=60,
        version="2026-02",
        priced=False,
    ),
    # 2026-01-04
    Call(
        "2026-01-04T23:59:59.999Z",
        team="search",
        project="web",
        input_tokens=200,
        output_tokens=100,
        cost=0.75,
        approx=True,
        version="2026-02",
    ),
    Call(
        "2026-01-04T05:00:00.000Z",
        provider="openai",
        model="gpt-4o",
        team="search",
        project="web",
        purpose="support",
        approx=True,  # a dedupe hit of an estimated answer: not part of the estimated share
        version="2026-02",
        dedupe=True,
        saved=4.0,
    ),
    Call(
        "2026-01-04T06:00:00.000Z",
        provider="openai",
        model="gpt-4o",
        input_tokens=500,
        output_tokens=125,
        cost=1.5,
        reasoning=20,
        version="2026-02",
    ),
    Call("2026-01-06T00:00:00.000Z", cost=200.0, input_tokens=9, output_tokens=9),  # outside
]

TOTAL_COST = 9.0  # 0.25 + 2.0 + 0.5 + 4.0 + 0.75 + 1.5


def row(line: Line) -> tuple[str, int, float, int, int]:
    return (line.name, line.calls, line.cost_usd, line.input_tokens, line.output_tokens)


def comparable(report: Report) -> dict[str, object]:
    """The report's content without how it was produced (its time, its sources, rollup use)."""
    data = report.to_dict()
    for key in ("generated_at", "from_rollups", "sources"):
        data.pop(key)
    return data


def assert_same(got: object, want: object, where: str = "report") -> None:
    """Equal structures; floats equal to the cent as shown and within 1e-9 (sums taken in
    another order may differ in the last bits, never in a cent)."""
    if isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9), f"{where}: {got} != {want}"
        assert f"{got:.2f}" == f"{want:.2f}", f"{where}: {got:.2f} != {want:.2f}"
    elif isinstance(want, dict) and isinstance(got, dict):
        assert sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key, value in want.items():
            assert_same(got[key], value, f"{where}.{key}")
    elif isinstance(want, list) and isinstance(got, list):
        assert len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for n, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{n}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def same_both_ways(start: date, end: date, ledgers: list[Path]) -> Report:
    """The report from rollups, checked equal to the one from scratch; returns the former."""
    warm = build_report(start, end, ledgers)
    cold = build_report(start, end, ledgers, use_rollups=False)
    assert_same(comparable(warm), comparable(cold))
    return warm


def rollup_offset(path: Path) -> int:
    data = json.loads(path.with_name(path.name + ".rollup.json").read_text("utf-8"))
    offset = data["offset"]
    assert isinstance(offset, int)
    return offset
