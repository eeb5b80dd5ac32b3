"""Automatic scoring (seed v6.11): the scorecard filled from the last hours of logs.

What the logs can prove is judged — an `llm_success` with its ledger line (row 1), an
`llm_dedupe_hit` with its zero-cost ledger line (row 4), ledger lines carrying a team/project
other than the defaults (row 5) — and the autoscore row passes when all of them were found. A
signal missing from the window is INCONCLUSIVE, never a pass: no data is not a pass. What
depends on the environment stays MANUAL, as the seed says (webhook reception, cron, fault
induction: rows 3, 7, 8); the report and the load (rows 2, 6) are NOT RUN here, since a log
cannot show them — their own commands do.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from nexus_llm.observe.audit import iso_ts
from nexus_llm.observe.jsonl import ReadStats, expand_sources, iter_records

from ..checklist import ROWS
from ..scorecard import FAIL, INCONCLUSIVE, MANUAL, NOT_RUN, PASS, TestOutcome

MIN_HOURS, MAX_HOURS, DEFAULT_HOURS = 2.0, 4.0, 4.0  # the seed's "last 2-4 hours"
SOURCE = "nexus autoscore"  # what the card names as the source of each row
MANUAL_ROWS = {
    "3": "webhook reception depends on the environment: post a rehearsal alert "
    "(nexus anomaly, or pytest --nexus-send-alerts) and confirm it arrived in the channel",
    "7": "cron depends on the environment: nexus cron check on the host that runs the jobs",
    "8": "fault induction depends on the environment: break the key or the network on "
    "purpose, watch the breaker open and one alert arrive, then restore and watch it close",
}
NOT_RUN_ROWS = {
    "2": "a log cannot show the report: run nexus report for the range",
    "6": "a log cannot show the load's p95: run nexus load (tools/rehearsal_load_test.py)",
}


# The files' timestamp form (audit.iso_ts): compared as text only once it is known to be one.
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
CLOCK_SKEW = timedelta(minutes=5)  # another host's clock may run a little ahead


@dataclass(frozen=True, slots=True)
class Window:
    """The logs' lines within the window, with what a read skipped."""

    audit: list[dict[str, object]]
    ledger: list[dict[str, object]]
    since: str
    skipped: int

    @property
    def envs(self) -> set[str]:
        """The `env` labels of the lines in the window (`local` marks the emulator's)."""
        return {str(r.get("env")) for r in (*self.audit, *self.ledger) if r.get("env")}


def read_window(
    audit: Path, ledger: Path, *, since: datetime, until: datetime | None = None
) -> Window:
    """The audit and ledger lines stamped from `since` to `until` (default: now) plus a few
    minutes of clock skew, from each file and those of its rotations modified since then (an
    older rotation cannot hold a newer line). A line whose `ts` is not a timestamp of the
    files' form is outside every window."""
    floor = iso_ts(since)
    ceiling = iso_ts((until or datetime.now(since.tzinfo)) + CLOCK_SKEW)
    stats = ReadStats()

    def inside(record: dict[str, object]) -> bool:
        ts = record.get("ts")
        return isinstance(ts, str) and _TS.fullmatch(ts) is not None and floor <= ts <= ceiling

    lines = {
        name: [r for r in _records(path, since, stats) if inside(r)]
        for name, path in (("audit", audit), ("ledger", ledger))
    }
    return Window(lines["audit"], lines["ledger"], floor, stats.skipped)


def _records(path: Path, since: datetime, stats: ReadStats) -> Iterator[dict[str, object]]:
    fresh = []
    for found in expand_sources([path]):
        try:
            if found.stat().st_mtime >= since.timestamp():
                fresh.append(found)
        except OSError:
            continue  # rotated away while we looked: nothing of it to score
    return iter_records(fresh, stats, rotated=False)


def score(window: Window, *, default_team: str, default_project: str) -> list[TestOutcome]:
    """The rows the logs decide, and the ones they cannot."""
    outcomes = [
        _calls(window),
        _dedupe(window),
        _tagging(window, default_team, default_project),
    ]
    found = all(o.status == PASS for o in outcomes)
    missing = [ROWS[o.row].title for o in outcomes if o.status != PASS]
    outcomes.append(
        TestOutcome(
            SOURCE,
            "autoscore",
            PASS if found else FAIL,
            measured=f"{sum(o.status == PASS for o in outcomes)} of 3 signals in the logs "
            f"since {window.since}",
            evidence="; ".join(f"row {o.row}: {o.measured}" for o in outcomes),
            hint="" if found else f"missing: {', '.join(missing)}; {ROWS['autoscore'].ng_hint}",
            detail=f"{window.skipped} damaged line(s) skipped" if window.skipped else "",
        )
    )
    outcomes += [TestOutcome(SOURCE, row, MANUAL, detail=why) for row, why in MANUAL_ROWS.items()]
    outcomes += [TestOutcome(SOURCE, row, NOT_RUN, detail=why) for row, why in NOT_RUN_ROWS.items()]
    return outcomes


def _calls(window: Window) -> TestOutcome:
    successes = [e for e in window.audit if e.get("event") == "llm_success"]
    # Check 1's own rule: a ledger line with a cost, or one that says its tokens are estimated.
    paid = [
        line
        for line in window.ledger
        if not line.get("dedupe_hit")
        and (_usd(line.get("actual_cost_usd")) > 0 or line.get("approx_tokens") is True)
    ]
    joined = _ids(successes) & _ids(paid)
    ok = bool(joined)
    return TestOutcome(
        SOURCE,
        "1",
        PASS if ok else INCONCLUSIVE,
        measured=f"{len(successes)} llm_success, {len(paid)} paid ledger line(s), "
        f"{len(joined)} matched by request_id",
        evidence=_providers(successes),
        hint="" if ok else "no successful call in the window: run check 1 (nexus smoke)",
    )


def _dedupe(window: Window) -> TestOutcome:
    hits = [e for e in window.audit if e.get("event") == "llm_dedupe_hit"]
    free = [
        line
        for line in window.ledger
        if line.get("dedupe_hit") is True and line.get("actual_cost_usd") == 0
    ]
    ok = bool(hits) and bool(free)
    saved = sum(_usd(line.get("saved_cost_usd")) for line in free)
    return TestOutcome(
        SOURCE,
        "4",
        PASS if ok else INCONCLUSIVE,
        measured=f"{len(hits)} llm_dedupe_hit, {len(free)} zero-cost ledger line(s), "
        f"${saved:.7f} saved",
        hint="" if ok else "no dedupe hit in the window: run check 4 (nexus dedupe)",
    )


def _tagging(window: Window, default_team: str, default_project: str) -> TestOutcome:
    pairs = Counter(
        (line["team"], line["project"])
        for line in window.ledger
        if isinstance(line.get("team"), str)
        and isinstance(line.get("project"), str)
        and line["team"]
        and line["project"]
    )
    tagged = {pair: n for pair, n in pairs.items() if pair != (default_team, default_project)}
    ok = bool(tagged)
    shown = ", ".join(
        f"{team}/{project} ×{n}" for (team, project), n in Counter(tagged).most_common(5)
    )
    return TestOutcome(
        SOURCE,
        "5",
        PASS if ok else INCONCLUSIVE,
        measured=f"{len(tagged)} team/project pair(s) besides the defaults "
        f"({default_team}/{default_project})",
        evidence=shown,
        hint=""
        if ok
        else "only the default team/project in the window: run check 5 "
        "(nexus tagging) and check LLM_DEFAULT_TEAM / LLM_DEFAULT_PROJECT and tags()",
    )


def _ids(records: list[dict[str, object]]) -> set[str]:
    """The request ids the records carry (a line without one joins nothing)."""
    found = (r.get("request_id") for r in records)
    return {value for value in found if isinstance(value, str) and value}


def _providers(successes: list[dict[str, object]]) -> str:
    counts = Counter(str(e.get("provider", "?")) for e in successes)
    return ", ".join(f"{name} ×{n}" for name, n in counts.most_common())


def _usd(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def window_start(now: datetime, hours: float) -> datetime:
    if not MIN_HOURS <= hours <= MAX_HOURS:
        raise ValueError(f"{hours!r} hours is invalid: expected {MIN_HOURS:g}-{MAX_HOURS:g}")
    return now - timedelta(hours=hours)


def default_output() -> Path:
    """Where the seed puts the filled card: `templates/REHEARSAL_SCORECARD_FILLED.md`."""
    return Path(os.getcwd()) / "templates" / "REHEARSAL_SCORECARD_FILLED.md"
