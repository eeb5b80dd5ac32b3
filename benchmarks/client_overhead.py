"""The sync Client's own cost per call, beside raw httpx, against the emulator on loopback.

Both clients send the same Gemini request to the same in-process emulator over one keep-alive
connection; raw httpx only reads the body, the Client runs the whole pipeline (tags, adapter,
parse, pricing, audit line, ledger line, breaker), once with dedupe off and once with the
defaults (dedupe on, SQLite state file, a new prompt each call so none is a cache hit).

    python benchmarks/client_overhead.py [--calls 2000] [--runs 3]

Numbers depend on the machine and its neighbours: compare the two columns of one run, never
numbers from different runs.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator

MAX_SECONDS_PER_RUN = 120.0  # a bound on each loop, whatever --calls says


def timed_calls(call: Callable[[], object], calls: int) -> list[float]:
    for _ in range(min(100, calls)):  # warm-up: connection, caches
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + MAX_SECONDS_PER_RUN
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
        if started > deadline:
            break
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bare, protected = "Client, dedupe off", "Client, defaults"
    results: dict[str, list[tuple[float, float]]] = {"raw httpx": [], bare: [], protected: []}
    counter = itertools.count()
    with Emulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        url = f"{emulator.base_url}/v1beta/models/gemini-2.5-flash:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "ping"}]}]}
        headers = {"x-goog-api-key": emulator.gemini_key}
        settings = Settings.from_env(
            {
                "GEMINI_API_KEY": emulator.gemini_key,
                "GEMINI_BASE_URL": emulator.base_url,
                "LLM_PROVIDER_ORDER": "gemini",
                "LLM_AUDIT_LOG_PATH": str(Path(tmp) / "audit.jsonl"),
                "LLM_COST_LEDGER_PATH": str(Path(tmp) / "ledger.jsonl"),
            }
        )
        for _ in range(args.runs):
            with httpx.Client() as raw:
                samples = timed_calls(
                    lambda: raw.post(url, json=body, headers=headers).content, args.calls
                )
            results["raw httpx"].append((statistics.median(samples), percentile(samples, 0.99)))
            with Client(settings) as client:
                # The pipeline alone: tags, adapter, pricing, audit and ledger lines, breaker.
                samples = timed_calls(
                    lambda: client.generate("ping", purpose="bench", dedupe=False), args.calls
                )
                results[bare].append((statistics.median(samples), percentile(samples, 0.99)))
                # The defaults: dedupe on (SQLite state file), a new prompt every call so each
                # one pays for lookup, claim and fulfil rather than hitting the cache.
                samples = timed_calls(
                    lambda: client.generate(f"ping {next(counter)}", purpose="bench"), args.calls
                )
                results[protected].append((statistics.median(samples), percentile(samples, 0.99)))
    print(f"{args.calls} sequential calls x {args.runs} runs, emulator on 127.0.0.1 (same process)")
    print(f"{'client':<20}{'p50 µs (median of runs)':>26}{'p99 µs':>10}  p50 per run")
    medians = {}
    for name, runs in results.items():
        p50 = statistics.median(r[0] for r in runs) * 1e6
        p99 = statistics.median(r[1] for r in runs) * 1e6
        medians[name] = p50
        per_run = ", ".join(f"{r[0] * 1e6:,.0f}" for r in runs)
        print(f"{name:<20}{p50:>26,.0f}{p99:>10,.0f}  {per_run}")
    for name in (bare, protected):
        print(f"{name}: {medians[name] - medians['raw httpx']:+,.0f} µs per call over raw httpx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
