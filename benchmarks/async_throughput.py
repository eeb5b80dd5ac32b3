"""AsyncClient throughput at concurrency 50, beside raw httpx, raw aiohttp and LiteLLM, on loopback.

The emulator runs in a separate process (``python -m pytest_nexus_rehearsal.cli emulator``) so
this process's event loop has a core of its own. Every client sends requests with unique
prompts, once per provider route: gemini (`generateContent`) and openai (`/v1/chat/completions`
with `gpt-4o-mini`). Raw clients only read the body, `AsyncClient` runs the whole pipeline (tags,
adapter, parse, pricing, breaker, audit and ledger lines) with dedupe off.

The LiteLLM SDK (optional: `pip install '.[bench]'`) is measured on the openai route only,
`await litellm.acompletion(model="openai/gpt-4o-mini", api_base=<emulator>/v1, ...)`, as
shipped (its default aiohttp transport) with callbacks and telemetry off and its bundled price
map (never the one it would fetch from the internet). It is several times slower per call, so
it makes `--litellm-calls` calls (default 1,000) rather than `--calls`; the output says so.

    python benchmarks/async_throughput.py [--calls 5000] [--concurrency 50] [--runs 3]
        [--litellm-calls 1000] [--provider both]

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
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from nexus_llm import AsyncClient, Settings

MAX_SECONDS_PER_RUN = 60.0  # a bound on each run, whatever --calls says
WARMUP_CALLS = 200
OPENAI_MODEL = "gpt-4o-mini"
LITELLM_ROW = "LiteLLM SDK (acompletion)"
LITELLM_MISSING = "LiteLLM: not installed (pip install '.[bench]')"

Call = Callable[[int], Awaitable[object]]
Result = tuple[float, float, float]  # calls/s, p50 s, p99 s


@dataclass(frozen=True)
class Route:
    """One provider's wire route on the emulator: what raw clients post, and how."""

    provider: str
    url: str
    key: str
    base_url: str  # what Settings (and LiteLLM's api_base) point at
    headers: dict[str, str]
    body: Callable[[int], dict[str, object]]


def load_litellm() -> Any | None:
    """Import LiteLLM with everything that could leave the machine switched off, or None."""
    # Read at import: without it LiteLLM downloads its model price map from GitHub.
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    try:
        import litellm
    except ImportError:
        return None
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.callbacks = []
    litellm.success_callback = []
    litellm.failure_callback = []
    litellm.input_callback = []
    return litellm


def start_emulator() -> tuple[subprocess.Popen[str], str, str, dict[str, tuple[str, str]]]:
    """Start the emulator; return it, its URL, its Gemini key and each provider's (URL, key)."""
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
    # Then one line per provider: "  openai: http://127.0.0.1:PORT/v1 key emulator-openai-key".
    routes: dict[str, tuple[str, str]] = {}
    while "openai" not in routes:
        listed = re.match(r"\s+(\w+): (http://\S+) key (\S+)", process.stdout.readline())
        if not listed:
            process.terminate()
            raise SystemExit("the emulator did not list its openai route")
        routes[listed.group(1)] = (listed.group(2), listed.group(3))
    return process, found.group(1), found.group(2), routes


def routes_for(
    base_url: str, gemini_key: str, listed: dict[str, tuple[str, str]]
) -> dict[str, Route]:
    openai_base, openai_key = listed["openai"]
    return {
        "gemini": Route(
            "gemini",
            f"{base_url}/v1beta/models/gemini-2.5-flash:generateContent",
            gemini_key,
            base_url,
            {"x-goog-api-key": gemini_key},
            lambda n: {
                "contents": [{"role": "user", "parts": [{"text": f"benchmark prompt {n}"}]}]
            },
        ),
        "openai": Route(
            "openai",
            f"{openai_base}/chat/completions",
            openai_key,
            openai_base,
            {"authorization": f"Bearer {openai_key}"},
            lambda n: {
                "model": OPENAI_MODEL,
                "messages": [{"role": "user", "content": f"benchmark prompt {n}"}],
            },
        ),
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(call: Call, calls: int, concurrency: int) -> Result:
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


async def raw_httpx(route: Route, args: argparse.Namespace) -> Result:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as http:

        async def call(n: int) -> object:
            reply = await http.post(route.url, json=route.body(n), headers=route.headers)
            return reply.content

        return await drive(call, args.calls, args.concurrency)


async def raw_aiohttp(route: Route, args: argparse.Namespace) -> Result:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def call(n: int) -> object:
            async with http.post(route.url, json=route.body(n), headers=route.headers) as r:
                return await r.read()

        return await drive(call, args.calls, args.concurrency)


async def ours(backend: str, settings: Settings, args: argparse.Namespace) -> Result:
    async with AsyncClient(settings, http_backend=backend) as client:  # type: ignore[arg-type]

        async def call(n: int) -> object:
            return await client.generate(f"benchmark prompt {n}", purpose="bench")

        return await drive(call, args.calls, args.concurrency)


async def litellm_sdk(litellm: Any, route: Route, args: argparse.Namespace) -> Result:
    async def call(n: int) -> object:
        return await litellm.acompletion(
            model=f"openai/{OPENAI_MODEL}",
            api_base=route.base_url,
            api_key=route.key,
            messages=[{"role": "user", "content": f"benchmark prompt {n}"}],
        )

    try:
        return await drive(call, args.litellm_calls, args.concurrency)
    finally:
        # Its clients are cached per event loop; close this loop's before asyncio.run ends it.
        cleanup: Any = import_module("litellm.llms.custom_httpx.async_client_cleanup")
        await cleanup.close_litellm_async_clients()


def settings_for(route: Route, tmp: str, run: int) -> Settings:
    name = route.provider.upper()
    env = {
        f"{name}_API_KEY": route.key,
        f"{name}_BASE_URL": route.base_url,
        "LLM_PROVIDER_ORDER": route.provider,
        "LLM_DEDUPE": "false",
        "LLM_AUDIT_LOG_PATH": str(Path(tmp) / f"audit-{route.provider}-{run}.jsonl"),
        "LLM_COST_LEDGER_PATH": str(Path(tmp) / f"ledger-{route.provider}-{run}.jsonl"),
    }
    if route.provider == "openai":
        env["OPENAI_MODEL"] = OPENAI_MODEL
    return Settings.from_env(env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--litellm-calls",
        type=int,
        default=1000,
        help="calls per run for the LiteLLM row, which is several times slower (default: 1000)",
    )
    parser.add_argument(
        "--provider",
        choices=("both", "gemini", "openai"),
        default="both",
        help="the route(s) measured; LiteLLM is measured on the openai route (default: both)",
    )
    args = parser.parse_args()
    providers = ("gemini", "openai") if args.provider == "both" else (args.provider,)
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        has_aiohttp = False
    else:
        has_aiohttp = True
    litellm = load_litellm() if "openai" in providers else None
    process, base_url, key, listed = start_emulator()
    routes = routes_for(base_url, key, listed)
    rows: dict[tuple[str, str], list[Result]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.runs):
                for provider in providers:
                    route = routes[provider]
                    settings = settings_for(route, tmp, run)
                    plan: list[tuple[str, Callable[[], Coroutine[Any, Any, Result]]]] = [
                        ("raw httpx (limits 100)", partial(raw_httpx, route, args)),
                        ("AsyncClient (httpx)", partial(ours, "httpx", settings, args)),
                    ]
                    if has_aiohttp:
                        plan += [
                            ("raw aiohttp (limit 100)", partial(raw_aiohttp, route, args)),
                            ("AsyncClient (aiohttp)", partial(ours, "aiohttp", settings, args)),
                        ]
                    if provider == "openai" and litellm is not None:
                        plan.append((LITELLM_ROW, partial(litellm_sdk, litellm, route, args)))
                    for name, bench in plan:
                        rows.setdefault((provider, name), []).append(asyncio.run(bench()))
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(
        f"{args.calls} calls at concurrency {args.concurrency} x {args.runs} runs; emulator in "
        f"its own process on 127.0.0.1 (pid {process.pid}); cores: {os.cpu_count()}"
    )
    print(f"{'route':<8}{'client':<27}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}  calls/s per run")
    for (provider, name), results in rows.items():
        rate = statistics.median(r[0] for r in results)
        p50 = statistics.median(r[1] for r in results) * 1000
        p99 = statistics.median(r[2] for r in results) * 1000
        per_run = ", ".join(f"{r[0]:,.0f}" for r in results)
        print(f"{provider:<8}{name:<27}{rate:>10,.0f}{p50:>9.1f}{p99:>9.1f}  {per_run}")
    if has_aiohttp:
        raw = "raw aiohttp (limit 100)"
        ceilings = ", ".join(
            f"{provider} {statistics.median(r[0] for r in rows[provider, raw]):,.0f}"
            for provider in providers
        )
        print(
            f"emulator ceiling, calls/s: about {ceilings} (raw aiohttp, the lightest client here, "
            "is a fair proxy: a row near it is bounded by the emulator)"
        )
    else:
        print("aiohttp is not installed (pip install '.[fast]'): its rows are skipped")
    if "openai" in providers:
        if litellm is None:
            print(LITELLM_MISSING)
        else:
            print(
                f"LiteLLM {version('litellm')} (openai route): {args.litellm_calls} calls per run "
                f"(--litellm-calls), not {args.calls}, each run after "
                f"{min(WARMUP_CALLS, args.litellm_calls)} warm-up calls; local price map, "
                "callbacks and telemetry off"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
