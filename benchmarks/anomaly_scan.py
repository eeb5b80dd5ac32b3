"""The anomaly window at scale: a full rescan of a 1,000,000-line audit log beside a scheduled run.

    .venv/bin/python benchmarks/anomaly_scan.py [--runs 3] [--dir DIR] [--timeout 300]

Generates once, and caches in `--dir`, an audit log of 1,000,000 lines (time-ordered over the
3 days ending at generation time: ~90% `llm_success` of ~300 bytes with request ids, ~2.5%
`llm_error` 429, ~1.5% `llm_error` 5xx, ~3% `llm_retry`, some fallbacks and dedupe hits, and a
few hundred `breaker_*` lines in episodes: open, half-open, then closed or open again) and the
cost ledger of the same calls (one line per success and per dedupe hit, in the `CostLedger`
shape). Then, each variant in a FRESH process, `--runs`
times, with the watcher's settings (retention 60 min, window 15 min):

- full rescan: `WindowReader(checkpoint_path=None)` → `scan` + `evaluate` at the log's end;
- scheduled run: a checkpoint exists (written by a full scan at the log's end); 1,000 new audit
  lines and their ~900 ledger lines are appended (fresh ones before every run, 5 minutes of
  traffic each, as the every-5-minutes schedule sees them) → `scan` + `evaluate` from the
  checkpoint, which it saves for the next run.

Time is `scan` + `evaluate` measured inside the child (imports and interpreter start apart).
Memory, two ways: the peak RSS delta (`resource.getrusage(RUSAGE_SELF).ru_maxrss` after the
run minus the same after imports, so it is only what the scan added) in the timed runs, and the
`tracemalloc` peak of Python allocations in one extra, untimed run per variant (tracemalloc
slows allocation). At the end the files hold the 1M lines plus every appended batch: a full
rescan of them must give the same buckets and evaluations as the last scheduled run. The files
are then cut back to their generated size so that `--dir` can be reused. Only local files are
touched; every child is bounded by `--timeout`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LINES = 1_000_000
APPENDED = 1_000
DAYS = 3
RETENTION_MIN = 60.0
WINDOW_MIN = 15.0
STEP_MIN = 5.0  # the watcher's schedule: one run every 5 minutes
GOAL_S = 0.050
FORMAT = 2  # of the cached files: bump when the generator changes

PROVIDERS = {
    "gemini": ["gemini-2.5-flash", "gemini-2.5-pro"],
    "openai": ["gpt-4o-mini", "gpt-4o"],
    "anthropic": ["claude-haiku-4-5", "claude-sonnet-4-5"],
    "glm": ["glm-4.5", "glm-4-plus"],
}
PURPOSES = ["ops", "support", "search", "summarise", "billing"]

# The child: import, then scan + evaluate once, and print one JSON object on its last line.
CHILD = r"""
import hashlib, json, resource, sys, time
from datetime import datetime
from pathlib import Path
from nexus_llm.alert.anomaly import Thresholds, evaluate
from nexus_llm.alert.window import WindowReader, checkpoint_path_for

audit, ledger, mode, now_text = sys.argv[1:5]
retention, window, trace = float(sys.argv[5]), float(sys.argv[6]), sys.argv[7] == "1"
now = datetime.fromisoformat(now_text)
reader = WindowReader(
    Path(audit), Path(ledger), retention_min=retention,
    checkpoint_path=None if mode == "full" else checkpoint_path_for(Path(audit)),
)
thresholds = Thresholds(window_min=window)
if trace:
    import tracemalloc
    tracemalloc.start()
base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
scan = reader.scan(now, need_min=window)
t1 = time.perf_counter()
results = evaluate(scan.data, now, thresholds)
t2 = time.perf_counter()
# The rest of a scheduled run: open the SQLite state file, take the run lock, move the alert
# book, look at the spool (sending is the network's time, not ours).
from nexus_llm.alert.lifecycle import AlertBook
from nexus_llm.state.sqlite import SQLiteStore
store = SQLiteStore(Path(audit).with_name("bench_state.sqlite3"))
book = AlertBook(store)
with book.exclusive():
    book.advance(results, now)
    book.spool()
store.close()
t3 = time.perf_counter()
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {
    "wall_s": t2 - t0, "scan_s": t1 - t0, "eval_s": t2 - t1, "book_s": t3 - t2,
    "rss_base_mb": base_kb / 1024, "rss_delta_mb": (peak_kb - base_kb) / 1024,
    "bytes_read": scan.stats.bytes_read, "lines_read": scan.stats.lines_read,
    "corrupt": scan.stats.corrupt, "from_checkpoint": scan.stats.from_checkpoint,
    "notes": scan.stats.notes,
    "data": hashlib.sha256(
        json.dumps(scan.data.to_json(), sort_keys=True).encode()).hexdigest()[:16],
    "evaluations": [[e.rule, e.labels, e.value, e.firing] for e in results],
    "firing": sorted(f"{e.rule} {e.label_text()}" for e in results if e.firing),
}
if trace:
    out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps(out))
"""


# -- the files --------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Traffic:
    """Audit events and ledger lines of a synthetic fleet, in the shapes the client writes."""

    def __init__(self, seed: int, first_id: int) -> None:
        self.rng = random.Random(seed)
        self.n = first_id

    def lines(self, ts: str) -> tuple[list[str], list[str]]:
        """The audit line(s) and ledger line(s) of one moment: usually one call."""
        rng, dumps = self.rng, json.dumps
        self.n += 1
        provider = rng.choice(list(PROVIDERS))
        base: dict[str, object] = {
            "ts": ts,
            "event": "llm_success",
            "env": "prod",
            "request_id": f"{self.n:032x}",
            "provider": provider,
            "model": rng.choice(PROVIDERS[provider]),
            "purpose": rng.choice(PURPOSES),
            "team": f"team-{rng.randrange(10)}",
            "project": f"project-{rng.randrange(20)}",
        }
        roll = rng.random()
        if roll < 0.0001:  # a breaker episode: open, a probe, closed (1 in 5 left open)
            last = "breaker_open" if rng.random() < 0.2 else "breaker_closed"
            episode = [
                dumps(
                    {"ts": ts, "event": event, "env": "prod", "provider": provider,
                     "reason": "consecutive failures", "failures": rng.randint(5, 20)},
                    separators=(",", ":"),
                )
                for event in ("breaker_open", "breaker_half_open", last)
            ]  # fmt: skip
            return episode, []
        if roll < 0.04:
            status = 429 if roll < 0.025 else rng.choice([500, 502, 503])
            error = base | {
                "event": "llm_error",
                "status": status,
                "error_type": "rate_limited" if status == 429 else "server_error",
                "provider_code": "RESOURCE_EXHAUSTED" if status == 429 else "UNAVAILABLE",
                "retryable": True,
                "retry_after_s": 2.0 if status == 429 else None,
                "message": "quota exceeded" if status == 429 else "upstream unavailable",
                "attempt": 1,
                "latency_ms": round(rng.uniform(20, 400), 3),
            }
            return [dumps(error, separators=(",", ":"))], []
        if roll < 0.07:
            retry = base | {
                "event": "llm_retry",
                "attempt": 1,
                "next_attempt": 2,
                "wait_s": 1.5,
                "reason": "rate_limited",
                "status": 429,
                "retry_after_s": 1.5,
            }
            del retry["model"]
            return [dumps(retry, separators=(",", ":"))], []
        if roll < 0.075:
            fallback = base | {
                "event": "llm_fallback",
                "from_provider": provider,
                "to_provider": "openai",
                "reason": "breaker_open",
            }
            del fallback["model"]
            return [dumps(fallback, separators=(",", ":"))], []
        dedupe = roll < 0.09
        inp, out = rng.randint(50, 4000), rng.randint(10, 800)
        cost = round((inp * 0.3 + out * 2.5) / 1e6, 10)
        if dedupe:
            event = base | {
                "event": "llm_dedupe_hit",
                "kind": "exact",
                "original_request_id": f"{self.n - 7:032x}",
                "saved_cost_usd": cost,
            }
        else:
            event = base | {
                "input_tokens": inp,
                "output_tokens": out,
                "cached_tokens": 0,
                "cost_usd": cost,
                "latency_ms": round(rng.uniform(150, 3000), 3),
                "attempt": 1,
            }
        ledger = {
            "ts": ts,
            "env": "prod",
            "request_id": base["request_id"],
            "provider": provider,
            "model": base["model"],
            "team": base["team"],
            "project": base["project"],
            "purpose": base["purpose"],
            "input_tokens": 0 if dedupe else inp,
            "output_tokens": 0 if dedupe else out,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "actual_cost_usd": 0.0 if dedupe else cost,
            "approx_tokens": False,
            "price_version": "2026-11-26",
            "dedupe_hit": dedupe,
            "saved_cost_usd": cost if dedupe else 0.0,
            "priced": True,
        }
        return [dumps(event, separators=(",", ":"))], [dumps(ledger, separators=(",", ":"))]

    def write(
        self, audit: Path, ledger: Path, lines: int, start: datetime, span: timedelta
    ) -> tuple[int, str]:
        """Append exactly `lines` audit lines (and the ledger lines of their calls), spread
        evenly over `span` from `start`; returns (ledger lines written, the last ts)."""
        step = span / lines
        written = ledger_lines = 0
        ts = iso(start)
        with (
            audit.open("a", encoding="utf-8") as a_out,
            ledger.open("a", encoding="utf-8") as l_out,
        ):
            while written < lines:
                a_buf: list[str] = []
                l_buf: list[str] = []
                while written < lines and len(a_buf) < 10_000:
                    ts = iso(start + step * written)
                    events, costs = self.lines(ts)
                    events = events[: lines - written]
                    written += len(events)
                    a_buf += events
                    l_buf += costs
                a_out.write("\n".join(a_buf) + "\n")
                if l_buf:
                    l_out.write("\n".join(l_buf) + "\n")
                ledger_lines += len(l_buf)
        return ledger_lines, ts


@dataclass
class DataSet:
    audit: Path
    ledger: Path
    audit_size: int
    ledger_size: int
    end: datetime  # the ts of the last generated line
    ledger_lines: int


def prepare(directory: Path) -> DataSet:
    """The cached files at their generated size (lines appended by a past run are cut off)."""
    directory.mkdir(parents=True, exist_ok=True)
    audit, ledger = directory / "audit-1m.jsonl", directory / "ledger-1m.jsonl"
    meta_path = directory / "anomaly-scan.json"
    meta: dict[str, Any] = {}
    if meta_path.exists() and audit.exists() and ledger.exists():
        meta = json.loads(meta_path.read_text())
    if (
        meta.get("format") != FORMAT
        or audit.stat().st_size < meta["audit_size"]
        or ledger.stat().st_size < meta["ledger_size"]
    ):
        print(f"generating {LINES:,} audit lines and their ledger into {directory} (once) ...")
        started = time.perf_counter()
        for path in (meta_path, audit, ledger):
            path.unlink(missing_ok=True)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        span = timedelta(days=DAYS)
        ledger_lines, last_ts = Traffic(seed=7, first_id=0).write(
            audit, ledger, LINES, end - span, span
        )
        meta = {
            "format": FORMAT,
            "audit_size": audit.stat().st_size,
            "ledger_size": ledger.stat().st_size,
            "end": last_ts,
            "ledger_lines": ledger_lines,
        }
        meta_path.write_text(json.dumps(meta))
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    restore(audit, ledger, meta["audit_size"], meta["ledger_size"])
    return DataSet(
        audit,
        ledger,
        meta["audit_size"],
        meta["ledger_size"],
        datetime.fromisoformat(meta["end"].replace("Z", "+00:00")),
        meta["ledger_lines"],
    )


def restore(audit: Path, ledger: Path, audit_size: int, ledger_size: int) -> None:
    for path, size in ((audit, audit_size), (ledger, ledger_size)):
        if path.stat().st_size > size:
            os.truncate(path, size)
    checkpoint = audit.with_name(audit.name + ".anomaly.json")
    checkpoint.unlink(missing_ok=True)


def warm_page_cache(*paths: Path) -> None:
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(16 << 20):
                pass


# -- running ----------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    tracemalloc_mb: float = 0.0

    def median(self, key: str) -> float:
        return statistics.median(float(r[key]) for r in self.runs)

    def peak(self, key: str) -> float:
        return max(float(r[key]) for r in self.runs)


def run_child(data: DataSet, mode: str, now: datetime, timeout: float, trace: bool = False) -> Any:
    argv = [
        str(data.audit),
        str(data.ledger),
        mode,
        now.isoformat(),
        str(RETENTION_MIN),
        str(WINDOW_MIN),
        "1" if trace else "0",
    ]
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *argv],
            capture_output=True,
            timeout=timeout,
            cwd=HERE.parent,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"a run took longer than --timeout {timeout:g} s: stopped") from None
    if done.returncode != 0:
        raise SystemExit(f"a run failed (exit {done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "nexus-anomaly-scan",
        help="where the generated files are cached (default: a directory in the temp dir)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    args = parser.parse_args()
    runs, timeout = max(args.runs, 1), args.timeout

    data = prepare(args.dir)
    warm_page_cache(data.audit, data.ledger)
    started = time.perf_counter()
    end = data.end

    full = Variant("full rescan (no checkpoint)")
    for _ in range(runs):
        full.runs.append(run_child(data, "full", end, timeout))
    full.tracemalloc_mb = run_child(data, "full", end, timeout, trace=True)["tracemalloc_peak_mb"]
    print("  full rescan: done", flush=True)

    # The checkpoint the scheduled runs start from: a full scan at the log's end, saved.
    seeded = run_child(data, "checkpoint", end, timeout)
    traffic = Traffic(seed=11, first_id=LINES)
    step = timedelta(minutes=STEP_MIN)
    incremental = Variant(f"scheduled run (checkpoint + {APPENDED:,} new audit lines)")
    appended_ledger: list[int] = []
    now: datetime = end
    last: dict[str, Any] = {}
    for k in range(runs + 1):  # the last one, untimed, under tracemalloc
        start, now = now, now + step
        # Fresh lines each run, just after the previous run's `now`.
        fresh = start + timedelta(milliseconds=1)
        appended_ledger.append(traffic.write(data.audit, data.ledger, APPENDED, fresh, step)[0])
        result = run_child(data, "incremental", now, timeout, trace=k == runs)
        if k < runs:
            incremental.runs.append(result)
        else:
            incremental.tracemalloc_mb = result["tracemalloc_peak_mb"]
            last = result
    print("  scheduled runs: done", flush=True)
    # The files now hold the 1M lines and every appended batch: from scratch must agree.
    check = run_child(data, "full", now, timeout)
    checkpoint_kb = data.audit.with_name(data.audit.name + ".anomaly.json").stat().st_size / 1024
    restore(data.audit, data.ledger, data.audit_size, data.ledger_size)
    elapsed = time.perf_counter() - started

    # -- print ------------------------------------------------------------------------------
    print()
    print(
        f"# Anomaly window: {LINES:,}-line audit log ({data.audit_size / 1e6:.0f} MB) + "
        f"{data.ledger_lines:,}-line ledger ({data.ledger_size / 1e6:.0f} MB), "
        f"retention {RETENTION_MIN:g} min, window {WINDOW_MIN:g} min; "
        f"median of {runs} runs, fresh process each"
    )
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, measured in {elapsed:.0f} s"
    )
    print()
    print(
        "| variant | wall ms (scan + evaluate) | range ms | scan ms | evaluate ms "
        "| MB read | lines read | peak RSS delta MB | tracemalloc peak MB |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for variant in (full, incremental):
        walls = [r["wall_s"] * 1000 for r in variant.runs]
        print(
            f"| {variant.name} | {variant.median('wall_s') * 1000:.1f} | "
            f"{min(walls):.1f}–{max(walls):.1f} | {variant.median('scan_s') * 1000:.1f} | "
            f"{variant.median('eval_s') * 1000:.2f} | "
            f"{variant.median('bytes_read') / 1e6:.2f} | {variant.median('lines_read'):,.0f} | "
            f"{variant.peak('rss_delta_mb'):.1f} | {variant.tracemalloc_mb:.1f} |"
        )
    print()
    print(
        "wall = scan + evaluate inside the child (interpreter start and imports excluded). "
        "peak RSS delta = ru_maxrss (resource, RUSAGE_SELF) after the run minus after imports, "
        "highest of the timed runs; tracemalloc peak = Python allocations in one extra, "
        "untimed run. A delta of 0 means the run stayed under the high-water mark the "
        "imports had already set."
    )
    print(
        f"seeding full scan (writes the checkpoint): {seeded['wall_s'] * 1000:.0f} ms; "
        f"appended per scheduled run: {APPENDED:,} audit lines, "
        f"{min(appended_ledger):,}–{max(appended_ledger):,} ledger lines; "
        f"checkpoint {checkpoint_kb:.0f} KB"
    )
    all_from = all(r["from_checkpoint"] for r in [*incremental.runs, last])
    print(f"scheduled runs started from the checkpoint: {'yes' if all_from else 'no'}")
    same = check["data"] == last["data"] and check["evaluations"] == last["evaluations"]
    print(
        f"last scheduled run = full rescan of the grown files: {'yes' if same else 'NO'} "
        f"(buckets {last['data']} vs {check['data']}); firing: "
        f"{', '.join(last['firing']) or 'nothing'}"
    )
    print()
    full_ms, inc_ms = full.median("wall_s") * 1000, incremental.median("wall_s") * 1000
    print(f"speed-up, scheduled run over full rescan: {full_ms / inc_ms:.0f}×")
    book_ms = incremental.median("book_s") * 1000
    print(
        f"the alert book on SQLite (open, lock, advance, spool) adds {book_ms:.1f} ms: "
        f"a whole scheduled run without sending is {inc_ms + book_ms:.1f} ms"
    )
    print(
        f"goal: scheduled run under {GOAL_S * 1000:.0f} ms: {inc_ms:.1f} ms → "
        f"{'yes' if inc_ms < GOAL_S * 1000 else 'no'}"
    )
    return 0 if same and all_from else 1


if __name__ == "__main__":
    sys.exit(main())
