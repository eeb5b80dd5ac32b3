"""AsyncClient throughput at concurrency 50, beside raw httpx and raw aiohttp, on loopback.

The emulator runs in a separate process (``python -m pytest_nexus_rehearsal.cli emulator``) so
this process's event loop has a core of its own. Every client sends Gemini requests with unique
prompts; raw clients only read the body, `AsyncClient` runs the whole pipeline (tags, adapter,
parse, pricing, breaker, audit and ledger lines) with dedupe off.

    python benchmarks/async_throughput.py [--calls 5000] [--concurrency 50] [--runs 3]

Raw aiohttp is the emulator's own ceiling as far as this machine can show it: no client here is
lighter, so a row near it is limited by the emulator, not by the client. Compare the rows of one
run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from nexus_llm import AsyncClient, Settings

MAX_SECONDS_PER_RUN = 60.0  # a bound on each run, whatever --calls says
WARMUP_CALLS = 200

Call = Callable[[int], Awaitable[object]]


def start_emulator() -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_nexus_rehearsal.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"listening on (http://\S+) \(gemini key: (\S+)\)", line)
    if not found:
        process.terminate()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, found.group(1), found.group(2)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(call: Call, calls: int, concurrency: int) -> tuple[float, float, float]:
    """Run `calls` calls, `concurrency` at a time; return (calls/s, p50 s, p99 s)."""
    await asyncio.gather(*(call(-n - 1) for n in range(min(WARMUP_CALLS, calls))))
    latencies: list[float] = []
    next_call = 0
    deadline = time.perf_counter() + MAX_SECONDS_PER_RUN

    async def worker() -> None:
        nonlocal next_call
        while next_call < calls and time.perf_counter() < deadline:
            n = next_call
            next_call += 1
            started = time.perf_counter()
            await call(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)


def gemini_body(n: int) -> dict[str, object]:
    return {"contents": [{"role": "user", "parts": [{"text": f"benchmark prompt {n}"}]}]}


async def raw_httpx(url: str, key: str, args: argparse.Namespace) -> tuple[float, float, float]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as http:

        async def call(n: int) -> object:
            reply = await http.post(url, json=gemini_body(n), headers={"x-goog-api-key": key})
            return reply.content

        return await drive(call, args.calls, args.concurrency)


async def raw_aiohttp(url: str, key: str, args: argparse.Namespace) -> tuple[float, float, float]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def call(n: int) -> object:
            async with http.post(url, json=gemini_body(n), headers={"x-goog-api-key": key}) as r:
                return await r.read()

        return await drive(call, args.calls, args.concurrency)


def ours(backend: str) -> Callable[..., Awaitable[tuple[float, float, float]]]:
    async def run(settings: Settings, args: argparse.Namespace) -> tuple[float, float, float]:
        async with AsyncClient(settings, http_backend=backend) as client:  # type: ignore[arg-type]

            async def call(n: int) -> object:
                return await client.generate(f"benchmark prompt {n}", purpose="bench")

            return await drive(call, args.calls, args.concurrency)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        has_aiohttp = False
    else:
        has_aiohttp = True
    process, base_url, key = start_emulator()
    url = f"{base_url}/v1beta/models/gemini-2.5-flash:generateContent"
    rows: dict[str, list[tuple[float, float, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.runs):
                env = {
                    "GEMINI_API_KEY": key,
                    "GEMINI_BASE_URL": base_url,
                    "LLM_PROVIDER_ORDER": "gemini",
                    "LLM_DEDUPE": "false",
                    "LLM_AUDIT_LOG_PATH": str(Path(tmp) / f"audit-{run}.jsonl"),
                    "LLM_COST_LEDGER_PATH": str(Path(tmp) / f"ledger-{run}.jsonl"),
                }
                settings = Settings.from_env(env)
                plan: list[tuple[str, Callable[[], Awaitable[tuple[float, float, float]]]]] = [
                    ("raw httpx (limits 100)", lambda: raw_httpx(url, key, args)),
                    ("AsyncClient (httpx)", lambda s=settings: ours("httpx")(s, args)),
                ]
                if has_aiohttp:
                    plan += [
                        ("raw aiohttp (limit 100)", lambda: raw_aiohttp(url, key, args)),
                        ("AsyncClient (aiohttp)", lambda s=settings: ours("aiohttp")(s, args)),
                    ]
                for name, bench in plan:
                    rows.setdefault(name, []).append(asyncio.run(bench()))
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(
        f"{args.calls} calls at concurrency {args.concurrency} x {args.runs} runs; emulator in "
        f"its own process on 127.0.0.1 (pid {process.pid}); cores: {os.cpu_count()}"
    )
    print(f"{'client':<26}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}  calls/s per run")
    for name, results in rows.items():
        rate = statistics.median(r[0] for r in results)
        p50 = statistics.median(r[1] for r in results) * 1000
        p99 = statistics.median(r[2] for r in results) * 1000
        per_run = ", ".join(f"{r[0]:,.0f}" for r in results)
        print(f"{name:<26}{rate:>10,.0f}{p50:>9.1f}{p99:>9.1f}  {per_run}")
    if has_aiohttp:
        ceiling = statistics.median(r[0] for r in rows["raw aiohttp (limit 100)"])
        print(
            f"emulator ceiling: about {ceiling:,.0f} calls/s (raw aiohttp, the lightest client "
            "here, is a fair proxy: a row near it is bounded by the emulator)"
        )
    else:
        print("aiohttp is not installed (pip install '.[fast]'): its rows are skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
