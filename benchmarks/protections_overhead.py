"""What the protections add to a call: the pipeline on a memory store, SQLite and Redis.

Every variant is the sync `Client` sending the same Gemini request shape to one in-process
emulator on loopback, sequentially, in the same run:

- raw httpx: the request alone, for scale.
- bare pipeline: dedupe off and an in-memory store, so the only protection left is the
  breaker's one read per call. The baseline the other rows are measured against.
- memory / SQLite / Redis, dedupe miss: dedupe on and every prompt new, so each call pays the
  whole dedupe path (lookup, claim the in-flight lock, look again, call, store the answer,
  release the lock) plus the breaker's read, on that store. SQLite and Redis are opened the
  way a deployment opens them: `LLM_STATE_PATH` alone, or `REDIS_URL` (Redis with the SQLite
  file to fall back on) through the real store factory.
- ... dedupe hit: the same prompt every call, answered from the cache without any request.

Redis is a `redis-server` this script starts on a free 127.0.0.1 port and stops at the end;
without one on PATH those rows are skipped with a note.

    python benchmarks/protections_overhead.py [--calls 1000]

Numbers depend on the machine and its neighbours: compare the rows of one run, never numbers
from different runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import httpx
import redis

from nexus_llm import Client, Settings
from nexus_llm.emulator import Emulator
from nexus_llm.pipeline import CallPipeline
from nexus_llm.state import MemoryStore

MAX_SECONDS = 120.0  # a bound on the timed loops, whatever --calls says
WARM_UP_CALLS = 50
ROUNDS = 10  # the variants take turns, so drift on a busy machine hits them all alike
BASELINE = "bare pipeline (memory store, dedupe off)"

Call = Callable[[], object]


@dataclass(frozen=True)
class Row:
    variant: str
    p50_us: float | None = None
    p99_us: float | None = None
    calls: int = 0
    note: str = ""


def timed_rounds(variants: dict[str, Call], calls: int) -> dict[str, list[float]]:
    """Time `calls` calls of each variant, in ROUNDS turns; stop early at MAX_SECONDS."""
    for call in variants.values():
        for _ in range(min(WARM_UP_CALLS, calls)):  # connection, caches, first writes
            call()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    deadline = time.perf_counter() + MAX_SECONDS
    per_round = [calls // ROUNDS + (1 if i < calls % ROUNDS else 0) for i in range(ROUNDS)]
    for chunk in per_round:
        for name, call in variants.items():
            taken = samples[name]
            for _ in range(chunk):
                started = time.perf_counter()
                call()
                taken.append(time.perf_counter() - started)
        if time.perf_counter() > deadline:
            break
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measured(variant: str, samples: list[float], note: str = "") -> Row:
    return Row(
        variant,
        p50_us=statistics.median(samples) * 1e6,
        p99_us=percentile(samples, 0.99) * 1e6,
        calls=len(samples),
        note=note,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(workdir: Path) -> Iterator[str | None]:
    """A throw-away redis-server on 127.0.0.1 (no persistence); its URL, or None without one."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    port = free_port()
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(workdir)]
    with (workdir / "redis.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as probe:
                    probe.ping()
                break
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port}") from None
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def settings_for(emulator: Emulator, workdir: Path, **extra: str) -> Settings:
    workdir.mkdir(parents=True)
    return Settings.from_env(
        {
            "GEMINI_API_KEY": emulator.gemini_key,
            "GEMINI_BASE_URL": emulator.base_url,
            "LLM_PROVIDER_ORDER": "gemini",
            "LLM_AUDIT_LOG_PATH": str(workdir / "audit.jsonl"),
            "LLM_COST_LEDGER_PATH": str(workdir / "ledger.jsonl"),
            "LLM_STATE_PATH": str(workdir / "llm_state.sqlite3"),
            **extra,
        }
    )


def dedupe_variants(label: str, client: Client) -> dict[str, Call]:
    """A dedupe-miss variant (every prompt new) and a dedupe-hit one (one prompt) on `client`."""
    numbers = count()
    client.generate("bench same", purpose="bench")  # the one paid call the hits replay
    return {
        f"{label}, dedupe miss": lambda: client.generate(f"bench {next(numbers)}", purpose="bench"),
        f"{label}, dedupe hit": lambda: client.generate("bench same", purpose="bench"),
    }


def run(calls: int) -> tuple[list[Row], str]:
    with ExitStack() as stack:
        emulator = stack.enter_context(Emulator())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_url = stack.enter_context(redis_server(tmp))
        url = f"{emulator.base_url}/v1beta/models/gemini-2.5-flash:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "bench 0"}]}]}
        headers = {"x-goog-api-key": emulator.gemini_key}
        raw = stack.enter_context(httpx.Client())
        variants: dict[str, Call] = {
            "raw httpx (no pipeline)": lambda: raw.post(url, json=body, headers=headers).content
        }

        bare = settings_for(emulator, tmp / "bare", LLM_DEDUPE="false")
        client = stack.enter_context(Client(bare, pipeline=CallPipeline(bare, store=MemoryStore())))
        numbers = count()
        variants[BASELINE] = lambda: client.generate(f"bench {next(numbers)}", purpose="bench")

        memory = settings_for(emulator, tmp / "memory")
        memory_client = Client(memory, pipeline=CallPipeline(memory, store=MemoryStore()))
        # LLM_STATE_PATH alone: the factory opens SQLite.
        clients = {"memory": stack.enter_context(memory_client)}
        clients["sqlite"] = stack.enter_context(Client(settings_for(emulator, tmp / "sqlite")))
        if redis_url is not None:
            # REDIS_URL: the factory opens Redis, with the SQLite file to fall back on.
            settings = settings_for(emulator, tmp / "redis", REDIS_URL=redis_url)
            clients["redis"] = stack.enter_context(Client(settings))
        for name, store_client in clients.items():
            stack.callback(store_client.pipeline.store.close)
            label = {"memory": "memory store", "sqlite": "SQLite store", "redis": "Redis store"}
            variants.update(dedupe_variants(label[name], store_client))

        samples = timed_rounds(variants, calls)
        rows = []
        for name, taken in samples.items():
            store = name.split()[0].lower()
            served_by = clients[store].pipeline.store.name if store in clients else store
            note = "" if served_by == store else f"served by {served_by}!"
            rows.append(measured(name, taken, note))
        if redis_url is None:
            note = "skipped: redis-server is not on PATH"
            rows += [Row("Redis store, dedupe miss", note=note), Row("Redis store, dedupe hit")]
            return rows, "no redis-server"
        return rows, f"redis-server on {redis_url.removesuffix('/0')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per variant")
    args = parser.parse_args()
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    rows, server = run(args.calls)
    base = next(r.p50_us for r in rows if r.variant == BASELINE)
    assert base is not None
    print(
        f"{args.calls} sequential calls per variant (+{WARM_UP_CALLS} warm-up) in {ROUNDS} "
        f"interleaved rounds; emulator on 127.0.0.1 in this process; {server}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"{os.cpu_count()} CPUs, load average {load} (Redis: one round trip per store command)")
    width = max(len(r.variant) for r in rows) + 2
    print(f"{'variant':<{width}}{'p50 µs':>10}{'p99 µs':>10}{'added µs vs bare (p50)':>25}")
    for row in rows:
        if row.p50_us is None or row.p99_us is None:
            print(f"{row.variant:<{width}}{'—':>10}{'—':>10}{'':>25}  {row.note}")
            continue
        added = "baseline" if row.variant == BASELINE else f"{row.p50_us - base:+,.0f}"
        short = f"  (only {row.calls} calls in the time bound)" if row.calls < args.calls else ""
        note = f"  {row.note}" if row.note else ""
        print(
            f"{row.variant:<{width}}{row.p50_us:>10,.0f}{row.p99_us:>10,.0f}{added:>25}{short}{note}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
