"""The FinOps report at scale: a 30-day report over a 1,000,000-line ledger, ours beside DuckDB.

    .venv/bin/python benchmarks/report_scale.py [--runs 3] [--dir DIR] [--timeout 300]

Generates the ledger once with `make_ledger.py` (~400 MB, 60 days from 2026-01-01, 10 teams,
20 projects, 4 providers, time-ordered) and caches it in `--dir`. The query everywhere: the
report for 2026-01-01..2026-01-30 (UTC days, `--to` included) — total cost, calls, and cost and
calls by team, project, purpose, provider and model. Variants, each run in a FRESH process:

- ours cold: `build_report` with no rollup beside the ledger (deleted before every run);
- ours warm: the rollup checkpointed at the end of the 1M lines, then 1,000 lines appended
  (dated inside both ranges); the same range, and 2026-01-15..2026-02-14;
- ours from scratch: `use_rollups=False` (never reads or writes a rollup);
- DuckDB `read_json` (explicit columns, one scan, GROUPING SETS), if installed (`.[bench]`);
- stdlib `json.loads` line by line, for context.

Wall time is the whole process (interpreter start + imports + query), as in the anchors;
*query s* is measured inside it. Memory: the process's own peak RSS (`RUSAGE_SELF`), the
largest peak RSS among its children (`RUSAGE_CHILDREN`, the forked workers; their RSS counts
pages shared with the parent), and the peak of the whole tree's PSS sampled from /proc every
`--sample-ms` (PSS splits shared pages, so the sum is the tree's real footprint) in one extra
run per variant, so that polling does not slow the timed runs. The page cache is warmed before
measuring. Only local files are touched; every run is bounded by `--timeout`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
LINES = 1_000_000
APPENDED = 1_000
RANGE = ("2026-01-01", "2026-01-30")
OTHER_RANGE = ("2026-01-15", "2026-02-14")
DIMENSIONS = ("team", "project", "purpose", "provider", "model")
NO_DUCKDB = "duckdb not installed (pip install '.[bench]')"

# Every child prints one JSON object on its last stdout line: totals, breakdowns
# ({dimension: {name: [calls, cost]}}), timings and its own rusage.
_FOOTER = r"""
import resource as _r
_s, _c = _r.getrusage(_r.RUSAGE_SELF), _r.getrusage(_r.RUSAGE_CHILDREN)
out["self_mb"] = _s.ru_maxrss / 1024
out["children_mb"] = _c.ru_maxrss / 1024
out["cpu_s"] = _s.ru_utime + _s.ru_stime + _c.ru_utime + _c.ru_stime
print(json.dumps(out))
"""


def _child(body: str) -> str:
    return body + _FOOTER


OURS = _child(
    r"""
import json, sys, time
t0 = time.perf_counter()
from datetime import date
from nexus_llm.finops.report import build_report
t1 = time.perf_counter()
path, start, end, rollups = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
r = build_report(date.fromisoformat(start), date.fromisoformat(end), [path], use_rollups=rollups)
t2 = time.perf_counter()
out = {
    "calls": r.calls,
    "cost": r.cost_usd,
    "by": {d: {x.name: [x.calls, x.cost_usd] for x in rows} for d, rows in r.breakdowns.items()},
    "from_rollups": r.from_rollups,
    "skipped": r.skipped_corrupt + r.skipped_partial,
    "import_s": t1 - t0,
    "query_s": t2 - t1,
}
"""
)

DUCKDB = _child(
    r"""
import json, sys, time
t0 = time.perf_counter()
import duckdb
t1 = time.perf_counter()
path, start, end = sys.argv[1], sys.argv[2], sys.argv[3]
dims = ("team", "project", "purpose", "provider", "model")
con = duckdb.connect(config={"autoinstall_known_extensions": False})
columns = "{" + ",".join(f"{d}:'VARCHAR'" for d in ("ts", *dims)) + ",actual_cost_usd:'DOUBLE'}"
literal = "'" + path.replace("'", "''") + "'"
# UTC days as ts prefixes: start <= ts < the day after end (end is 'YYYY-MM-DD~', above any ts
# of that day and below the next day's).
rows = con.execute(
    f"SELECT grouping({', '.join(dims)}) AS g, {', '.join(dims)}, count(*), "
    f"sum(actual_cost_usd) FROM read_json({literal}, format='newline_delimited', "
    f"columns={columns}) WHERE ts >= ? AND ts < ? "
    f"GROUP BY GROUPING SETS ((), {', '.join(f'({d})' for d in dims)})",
    [start, end + "~"],
).fetchall()
t2 = time.perf_counter()
out = {"calls": 0, "cost": 0.0, "by": {d: {} for d in dims}}
for g, *values, calls, cost in rows:
    if g == 31:
        out["calls"], out["cost"] = calls, cost or 0.0
        continue
    i = [k for k in range(5) if not g & (1 << (4 - k))][0]
    out["by"][dims[i]][values[i]] = [calls, cost]
out["import_s"], out["query_s"] = t1 - t0, t2 - t1
"""
)

STDLIB = _child(
    r"""
import json, sys, time
t0 = time.perf_counter()
path, start, end = sys.argv[1], sys.argv[2], sys.argv[3]
dims = ("team", "project", "purpose", "provider", "model")
calls, cost, by = 0, 0.0, {d: {} for d in dims}
with open(path, "rb") as handle:
    for raw in handle:
        try:
            rec = json.loads(raw)
            day = rec["ts"][:10]
        except (ValueError, KeyError, TypeError):
            continue
        if day < start or day > end:
            continue
        c = rec["actual_cost_usd"]
        calls += 1
        cost += c
        for d in dims:
            row = by[d].setdefault(rec[d], [0, 0.0])
            row[0] += 1
            row[1] += c
out = {"calls": calls, "cost": cost, "by": by, "import_s": 0.0, "query_s": time.perf_counter() - t0}
"""
)


@dataclass
class Run:
    wall_s: float
    tree_mb: float
    result: dict[str, Any]


@dataclass
class Variant:
    name: str
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""
    tree_mb: float = 0.0  # from a separate, sampled run

    def median(self, key: str) -> float:
        if key == "wall_s":
            return statistics.median(r.wall_s for r in self.runs)
        return statistics.median(float(r.result[key]) for r in self.runs)

    def peak(self, key: str) -> float:
        return max(float(r.result[key]) for r in self.runs)


# -- the process tree's memory, sampled ---------------------------------------------------


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _pss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


class TreeSampler(threading.Thread):
    """Peak of the summed PSS of a process and its descendants, polled every `interval` s."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = sum(_pss_mb(pid) for pid in _descendants(self.pid))
            self.peak = max(self.peak, total)
            self.stop.wait(self.interval)


def run_child(code: str, args: list[str], timeout: float, sample_ms: float) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=HERE.parent,
    )
    sampler = TreeSampler(proc.pid, sample_ms / 1000) if sample_ms > 0 else None
    if sampler:
        sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit(f"a run took longer than --timeout {timeout:g} s: stopped") from None
    finally:
        wall = time.perf_counter() - started
        if sampler:
            sampler.stop.set()
            sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"a run failed (exit {proc.returncode}):\n{stderr.decode()[-2000:]}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    return Run(wall, sampler.peak if sampler else 0.0, result)


# -- the ledger ----------------------------------------------------------------------------


def _make_ledger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_ledger", HERE / "make_ledger.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(directory: Path, make: ModuleType) -> tuple[Path, int]:
    """The cached 1M-line ledger at its original size (lines appended by a previous run are cut
    off); generated once. Returns (path, size in bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    path, marker = directory / "ledger-1m.jsonl", directory / "ledger-1m.size"
    size = int(marker.read_text()) if marker.exists() and path.exists() else -1
    if size < 0 or path.stat().st_size < size:
        print(f"generating {LINES:,} lines into {path} (once) ...", flush=True)
        started = time.perf_counter()
        partial = directory / "ledger-1m.jsonl.part"
        partial.unlink(missing_ok=True)
        make.write(str(partial), lines=LINES, days=60, start=datetime(2026, 1, 1, tzinfo=UTC))
        partial.replace(path)
        size = path.stat().st_size
        marker.write_text(str(size))
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    elif path.stat().st_size > size:
        os.truncate(path, size)
    return path, size


def drop_rollups(path: Path) -> None:
    for rollup in path.parent.glob(path.name + "*.rollup.json"):
        rollup.unlink()


def warm_page_cache(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.read(16 << 20):
            pass


def append_lines(path: Path, make: ModuleType, base: int) -> None:
    os.truncate(path, base)  # the rollup stays valid: same file, same first line, offset = base
    make.write(
        str(path),
        lines=APPENDED,
        days=1,
        start=datetime(2026, 1, 20, tzinfo=UTC),  # inside both ranges
        first=LINES,
        seed=11,
    )


# -- comparing results ----------------------------------------------------------------------


def agree(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, bool, str]:
    """(totals agree, breakdowns agree, detail): calls exactly, cost to the cent."""
    totals = a["calls"] == b["calls"] and abs(a["cost"] - b["cost"]) < 0.005
    rows = mismatched = 0
    for dim in DIMENSIONS:
        left, right = a["by"].get(dim, {}), b["by"].get(dim, {})
        for name in set(left) | set(right):
            rows += 1
            x, y = left.get(name, [0, 0.0]), right.get(name, [0, 0.0])
            if x[0] != y[0] or abs(x[1] - y[1]) >= 0.005:
                mismatched += 1
    detail = (
        f"calls {a['calls']:,} vs {b['calls']:,}; cost ${a['cost']:,.6f} vs ${b['cost']:,.6f} "
        f"(diff {abs(a['cost'] - b['cost']):.2e}); breakdown rows {rows}, "
        f"mismatched {mismatched}"
    )
    return totals, mismatched == 0, detail


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "nexus-report-scale",
        help="where the generated ledger is cached (default: a directory in the temp dir)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument(
        "--sample-ms", type=float, default=20.0, help="tree PSS poll interval; 0 turns it off"
    )
    args = parser.parse_args()
    runs, timeout, sample = max(args.runs, 1), args.timeout, args.sample_ms

    make = _make_ledger()
    path, base = prepare(args.dir, make)
    warm_page_cache(path)
    have_duckdb = importlib.util.find_spec("duckdb") is not None
    ledger, (lo, hi), (lo2, hi2) = str(path), RANGE, OTHER_RANGE

    def measure(variant: Variant, code: str, argv: list[str], before: Any = None) -> None:
        for _ in range(runs):
            if before:
                before()
            variant.runs.append(run_child(code, argv, timeout, 0))
        if sample > 0:  # polling /proc costs CPU: the tree's memory comes from one more run
            if before:
                before()
            variant.tree_mb = run_child(code, argv, timeout, sample).tree_mb
        print(f"  {variant.name}: done", flush=True)

    started = time.perf_counter()
    cold = Variant(f"ours cold ({lo}..{hi}, no rollup)")
    measure(cold, OURS, [ledger, lo, hi, "1"], lambda: drop_rollups(path))
    scratch = Variant(f"ours from scratch (use_rollups=False, {lo}..{hi})")
    measure(scratch, OURS, [ledger, lo, hi, "0"])
    duck = Variant(f"DuckDB read_json ({lo}..{hi})")
    if have_duckdb:
        measure(duck, DUCKDB, [ledger, lo, hi])
    else:
        duck.skipped = NO_DUCKDB
    stdlib = Variant(f"stdlib json line by line ({lo}..{hi})")
    measure(stdlib, STDLIB, [ledger, lo, hi])

    # Warm: the last cold run left a rollup checkpointed at the end of the 1M lines; before each
    # warm run the file is cut back there and 1,000 new lines are appended.
    rollups = list(path.parent.glob(path.name + "*.rollup.json"))
    if not rollups:
        print("warning: no rollup was written by the cold runs; warm rows are not warm")
    warm = Variant(f"ours warm (+{APPENDED:,} lines, {lo}..{hi})")
    measure(warm, OURS, [ledger, lo, hi, "1"], lambda: append_lines(path, make, base))
    warm2 = Variant(f"ours warm (+{APPENDED:,} lines, {lo2}..{hi2})")
    measure(warm2, OURS, [ledger, lo2, hi2, "1"], lambda: append_lines(path, make, base))
    # The file now holds 1M + 1,000 lines: from scratch on it must equal the warm reports.
    check = run_child(OURS, [ledger, lo, hi, "0"], timeout, 0).result
    check2 = run_child(OURS, [ledger, lo2, hi2, "0"], timeout, 0).result
    os.truncate(path, base)
    elapsed = time.perf_counter() - started

    # -- print ---------------------------------------------------------------------------------
    print()
    print(
        f"# FinOps report at scale: {LINES:,}-line ledger ({base / 1e6:.0f} MB), "
        f"median of {runs} runs, fresh process each"
    )
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"duckdb {_version('duckdb') if have_duckdb else 'not installed'}, "
        f"measured in {elapsed:.0f} s"
    )
    print()
    duck_wall = duck.median("wall_s") if duck.runs else None
    header = (
        "| variant | wall s | wall range | import s | query s | self MB | children MB "
        "| tree PSS MB | × DuckDB |"
    )
    print(header)
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for variant in (cold, warm, warm2, scratch, duck, stdlib):
        if variant.skipped:
            print(f"| {variant.name} | {variant.skipped} | | | | | | | |")
            continue
        walls = [r.wall_s for r in variant.runs]
        ratio = f"{variant.median('wall_s') / duck_wall:.2f}×" if duck_wall else "n/a"
        tree = f"{variant.tree_mb:.0f}" if sample > 0 else "off"
        print(
            f"| {variant.name} | {variant.median('wall_s'):.3f} | "
            f"{min(walls):.3f}–{max(walls):.3f} | {variant.median('import_s'):.3f} | "
            f"{variant.median('query_s'):.3f} | "
            f"{variant.peak('self_mb'):.0f} | {variant.peak('children_mb'):.0f} | {tree} | "
            f"{ratio} |"
        )
    print()
    print(
        "wall = whole process (interpreter start + imports + query); import and query are "
        "timed inside it. "
        "MB columns: highest of the runs; self = the process's peak RSS, children = the "
        "largest peak RSS of one forked worker (counts pages shared with the parent); tree "
        + (
            f"PSS = peak of the summed PSS of the process and its workers, polled every "
            f"{sample:g} ms in one extra (untimed) run."
            if sample > 0
            else "PSS sampling off (--sample-ms 0)."
        )
    )
    reads = {int(r.result.get("from_rollups", 0)) for r in warm.runs + warm2.runs}
    print(f"warm runs read the rollup: {yes(reads == {1})} (from_rollups = {sorted(reads)})")
    print()

    if duck.runs:
        totals, breakdowns, detail = agree(cold.runs[0].result, duck.runs[0].result)
        print(f"totals agree: {yes(totals)} (ours cold vs DuckDB: {detail})")
        print(f"breakdowns agree with DuckDB: {yes(breakdowns)}")
    else:
        print(f"totals agree: n/a ({NO_DUCKDB})")
    totals, breakdowns, detail = agree(cold.runs[0].result, stdlib.runs[0].result)
    print(f"ours vs stdlib json: totals {yes(totals)}, breakdowns {yes(breakdowns)} ({detail})")
    totals, breakdowns, _ = agree(cold.runs[0].result, scratch.runs[0].result)
    print(f"cold (rollup written) = from scratch: {yes(totals and breakdowns)}")
    for name, left, right in (
        (f"{lo}..{hi}", warm.runs[-1].result, check),
        (f"{lo2}..{hi2}", warm2.runs[-1].result, check2),
    ):
        totals, breakdowns, detail = agree(left, right)
        print(f"warm = from scratch on the grown file, {name}: {yes(totals and breakdowns)}")
        print(f"  ({detail})")
    print()

    # The targets, stated against what was measured here.
    cold_wall, warm_wall = cold.median("wall_s"), warm.median("wall_s")
    warm_query = max(warm.median("query_s"), warm2.median("query_s"))
    cold_mem = max(cold.peak("self_mb"), cold.peak("children_mb"))
    print("targets (issue 5, item 4):")
    if duck_wall:
        print(
            f"- cold wall within 1.5× of DuckDB: {cold_wall / duck_wall:.2f}× → "
            f"{yes(cold_wall <= 1.5 * duck_wall)}"
        )
    print(
        f"- cold peak memory under 100 MB: largest single process {cold_mem:.0f} MB → "
        f"{yes(cold_mem < 100)}"
        + (
            f"; whole tree PSS {cold.tree_mb:.0f} MB → {yes(cold.tree_mb < 100)}"
            if sample > 0
            else ""
        )
    )
    print(
        f"- warm under 50 ms: query {warm_query * 1000:.0f} ms (slower of the two ranges) → "
        f"{yes(warm_query < 0.05)}; whole process {warm_wall * 1000:.0f} ms → "
        f"{yes(warm_wall < 0.05)}"
    )
    print(
        f"- warm at least 10× faster than cold: wall {cold_wall / warm_wall:.1f}×, query "
        f"{cold.median('query_s') / warm.median('query_s'):.0f}× → "
        f"{yes(cold_wall >= 10 * warm_wall)} (wall), "
        f"{yes(cold.median('query_s') >= 10 * warm.median('query_s'))} (query)"
    )
    return 0


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
