"""The sync Client's own cost per call, beside raw httpx and the LiteLLM SDK, on loopback.

Every client sends the same request to the same in-process emulator, sequentially, over one
keep-alive connection, once per provider route:

- gemini: `POST /v1beta/models/gemini-2.5-flash:generateContent`;
- openai: `POST /v1/chat/completions` with `gpt-4o-mini`, the route LiteLLM is pointed at
  (`litellm.completion(model="openai/gpt-4o-mini", api_base=<emulator>/v1, ...)`), so its row
  is compared with raw httpx and the Client on the same wire protocol.

Raw httpx and raw urllib3 only encode the body and read the answer; the Client runs the whole
pipeline (tags, adapter, parse, pricing, audit line, ledger line, metrics, breaker), once with
dedupe off and once with the defaults (dedupe on, SQLite state file, a new prompt each call so
none is a cache hit), over the sender `http_backend="auto"` picks (urllib3 with the `fast`
extra), and once more over httpx with dedupe off; LiteLLM runs its SDK as shipped, with its
callbacks and telemetry off and its bundled price map (never the one it would fetch from the
internet). The Client's overhead is printed over raw httpx (the bar of the issue) and over raw
urllib3 (the same library underneath: what the pipeline itself costs). LiteLLM is optional
(`pip install '.[bench]'`), urllib3 comes with `[fast]`: a missing one's rows are skipped with
a note.

    python benchmarks/client_overhead.py [--calls 2000] [--runs 3] [--provider both]

Numbers depend on the machine and its neighbours: compare the rows of one run, never numbers
from different runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from async_throughput import load_litellm  # the sibling script: one LiteLLM loader

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.sync_transports import choose_sync_backend, urllib3_available

MAX_SECONDS_PER_RUN = 120.0  # a bound on each loop, whatever --calls says
OPENAI_MODEL = "gpt-4o-mini"
LITELLM_MISSING = "LiteLLM: not installed (pip install '.[bench]')"
RAW, RAW_U3, LITELLM = "raw httpx", "raw urllib3", "LiteLLM SDK"
BARE, PROTECTED, OVER_HTTPX = "Client, dedupe off", "Client, defaults", "Client/httpx, no dedupe"
URLLIB3_MISSING = "urllib3: not installed (pip install '.[fast]'): the Client sends over httpx"


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


def raw_request(emulator: Any, provider: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The URL, JSON body and headers of one raw request to `provider`'s route."""
    if provider == "gemini":
        return (
            f"{emulator.base_url}/v1beta/models/gemini-2.5-flash:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": "ping"}]}]},
            {"x-goog-api-key": emulator.gemini_key},
        )
    return (
        f"{emulator.base_url_for('openai')}/chat/completions",
        {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "ping"}]},
        {"authorization": f"Bearer {emulator.key_for('openai')}"},
    )


def raw_call(raw: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    return raw.post(url, json=body, headers=headers).content


def raw_urllib3_call(pool: Any, path: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    """What raw httpx does, over one urllib3 connection pool: encode, send, read the body."""
    encoded = json.dumps(body).encode()
    reply = pool.urlopen("POST", path, body=encoded, headers=headers, retries=False)
    return reply.data  # type: ignore[no-any-return]


def settings_for(emulator: Any, provider: str, tmp: str) -> Settings:
    env = {
        "LLM_PROVIDER_ORDER": provider,
        "LLM_AUDIT_LOG_PATH": str(Path(tmp) / f"audit-{provider}.jsonl"),
        "LLM_COST_LEDGER_PATH": str(Path(tmp) / f"ledger-{provider}.jsonl"),
        "LLM_STATE_PATH": str(Path(tmp) / f"state-{provider}.sqlite3"),
    }
    if provider == "gemini":
        env |= {"GEMINI_API_KEY": emulator.gemini_key, "GEMINI_BASE_URL": emulator.base_url}
    else:
        env |= {
            "OPENAI_API_KEY": emulator.key_for("openai"),
            "OPENAI_BASE_URL": emulator.base_url_for("openai"),
            "OPENAI_MODEL": OPENAI_MODEL,
        }
    return Settings.from_env(env)


class _EmulatorProcess:
    """The emulator in a process of its own (the default): an in-process server thread would
    share the GIL with the client under test and charge the client for the server's work."""

    def __init__(self) -> None:
        from async_throughput import start_emulator  # the sibling script's launcher

        self._process, self.base_url, self.gemini_key, self._routes = start_emulator()

    def key_for(self, provider: str) -> str:
        return self.gemini_key if provider == "gemini" else self._routes[provider][1]

    def base_url_for(self, provider: str) -> str:
        return self.base_url if provider == "gemini" else self._routes[provider][0]

    def __enter__(self) -> _EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--provider",
        choices=("both", "gemini", "openai"),
        default="both",
        help="the route(s) measured; LiteLLM is measured on the openai route (default: both)",
    )
    parser.add_argument(
        "--emulator",
        choices=("process", "thread"),
        default="process",
        help="run the emulator in its own process (default) or in a thread of this one",
    )
    args = parser.parse_args()
    providers = ("gemini", "openai") if args.provider == "both" else (args.provider,)
    litellm = load_litellm() if "openai" in providers else None
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    counter = itertools.count()
    server: Any = _EmulatorProcess() if args.emulator == "process" else Emulator()
    with server as emulator, tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for provider in providers:
                url, body, headers = raw_request(emulator, provider)

                def record(name: str, call: Callable[[], object], provider: str = provider) -> None:
                    samples = timed_calls(call, args.calls)
                    results.setdefault((provider, name), []).append(
                        (statistics.median(samples), percentile(samples, 0.99))
                    )

                with httpx.Client() as raw:
                    record(RAW, partial(raw_call, raw, url, body, headers))
                if urllib3_available():
                    import urllib3

                    parsed = urllib3.util.parse_url(url)
                    json_headers = headers | {"content-type": "application/json"}
                    with urllib3.HTTPConnectionPool(parsed.host, parsed.port) as pool:
                        record(
                            RAW_U3,
                            partial(raw_urllib3_call, pool, parsed.request_uri, body, json_headers),
                        )
                settings = settings_for(emulator, provider, tmp)
                with Client(settings, http_backend="httpx") as client:
                    record(
                        OVER_HTTPX, lambda: client.generate("ping", purpose="bench", dedupe=False)
                    )
                with Client(settings) as client:
                    # The pipeline alone: tags, adapter, pricing, audit and ledger lines, breaker.
                    record(BARE, lambda: client.generate("ping", purpose="bench", dedupe=False))
                    # The defaults: dedupe on (SQLite state file), a new prompt every call so
                    # each one pays for lookup, claim and fulfil rather than hitting the cache.
                    record(
                        PROTECTED,
                        lambda: client.generate(f"ping {next(counter)}", purpose="bench"),
                    )
                if provider == "openai" and litellm is not None:
                    record(
                        LITELLM,
                        lambda: litellm.completion(
                            model=f"openai/{OPENAI_MODEL}",
                            api_base=emulator.base_url_for("openai"),
                            api_key=emulator.key_for("openai"),
                            messages=[{"role": "user", "content": "ping"}],
                        ),
                    )
    where = "its own process" if args.emulator == "process" else "a thread of this process"
    print(f"{args.calls} sequential calls x {args.runs} runs, emulator on 127.0.0.1 in {where}")
    print(f"{'route':<8}{'client':<26}{'p50 µs (median of runs)':>26}{'p99 µs':>10}  p50 per run")
    medians = {}
    for (provider, name), runs in results.items():
        p50 = statistics.median(r[0] for r in runs) * 1e6
        p99 = statistics.median(r[1] for r in runs) * 1e6
        medians[provider, name] = p50
        per_run = ", ".join(f"{r[0] * 1e6:,.0f}" for r in runs)
        print(f"{provider:<8}{name:<26}{p50:>26,.0f}{p99:>10,.0f}  {per_run}")
    for provider in providers:
        for name in (BARE, PROTECTED, OVER_HTTPX, LITELLM):
            if (provider, name) in medians:
                over = medians[provider, name] - medians[provider, RAW]
                line = f"{provider:<8}{name}: {over:+,.0f} µs per call over raw httpx"
                if name in (BARE, PROTECTED) and (provider, RAW_U3) in medians:
                    under = medians[provider, name] - medians[provider, RAW_U3]
                    line += f", {under:+,.0f} µs over raw urllib3"
                print(line)
    backend = choose_sync_backend("auto", transport=None)
    print(f"Client's sender (http_backend='auto'): {backend}")
    if not urllib3_available():
        print(URLLIB3_MISSING)
    if "openai" in providers:
        if litellm is None:
            print(LITELLM_MISSING)
        else:
            print(
                f"LiteLLM {version('litellm')}: litellm.completion(model='openai/{OPENAI_MODEL}', "
                "api_base=<emulator>/v1); local price map, callbacks and telemetry off"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
