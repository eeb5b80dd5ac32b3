"""Check 6 — low-intensity load: N calls at concurrency C keep p95 sane and almost none fail
(seed §B.6: "p95 does not blow up (relative to the environment), fail rate zero to a few").

"Relative to the environment" is measured, not assumed: first a few calls one after another
give this environment's own latency (their median); then the N calls go out from C threads,
and their p95 is judged against that median. A p95 under `P95_FACTOR` × the median, plus
`P95_SLACK_S` for scheduling on a busy machine, has not blown up; retries after 429s or
timeouts (seconds of backoff) blow far past it. The fail rate may be "a few": at most
`MAX_FAIL_RATE` of the calls.

Every call skips dedupe — the same prompt N times would otherwise be answered from the cache
and measure nothing — and carries the run's purpose, team and project into the ledger.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nexus_llm import Client
from nexus_llm.errors import NoProviderAvailableError, ProviderError

from .result import CheckResult

SEED_NG_HINT = (
    "fail rate rises (429 / timeout): check backoff / cooldown (LLM_RETRY_*, "
    "LLM_BREAKER_COOLDOWN_S), the provider's quota, and the load's concurrency"
)
WARMUP_CALLS = 5
P95_FACTOR = 10.0
P95_SLACK_S = 0.5
MAX_FAIL_RATE = 0.04  # "zero to a few": 2 of the seed's 50
MAX_CALLS, MAX_CONCURRENCY = 1000, 50  # low intensity: a rehearsal, not a stress test


@dataclass(frozen=True, slots=True)
class CallSample:
    """One call of the load: how long it took and how it ended (`ok`, or the error type)."""

    seconds: float
    outcome: str
    status: int | None = None


def threshold_text(baseline_s: float | None = None) -> str:
    limit = (
        f"{P95_FACTOR:g} × sequential p50 + {P95_SLACK_S * 1000:.0f} ms"
        if baseline_s is None
        else f"{p95_limit(baseline_s) * 1000:.0f} ms ({P95_FACTOR:g} × sequential p50 "
        f"{baseline_s * 1000:.1f} ms + {P95_SLACK_S * 1000:.0f} ms)"
    )
    return f"p95 <= {limit}; failures <= {MAX_FAIL_RATE:.0%} of the calls"


def p95_limit(baseline_s: float) -> float:
    return P95_FACTOR * baseline_s + P95_SLACK_S


def allowed_failures(n: int) -> int:
    return math.floor(MAX_FAIL_RATE * n + 1e-9)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0-1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def run_load(
    client: Client,
    *,
    prompt: str,
    n: int,
    concurrency: int,
    purpose: str,
    team: str | None = None,
    project: str | None = None,
    provider: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> CheckResult:
    """Measure the environment with `WARMUP_CALLS` sequential calls, then send `n` calls from
    `concurrency` threads, and judge p95 and the fail rate."""
    result = CheckResult("load", threshold=threshold_text(), hint=SEED_NG_HINT)

    def one() -> CallSample:
        started = clock()
        try:
            client.generate(
                prompt,
                purpose=purpose,
                team=team,
                project=project,
                provider=provider,
                dedupe=False,
            )
        except ProviderError as error:
            return CallSample(clock() - started, error.error_type, error.status)
        except NoProviderAvailableError:  # every provider skipped: its breaker is open
            return CallSample(clock() - started, "no_provider_available")
        return CallSample(clock() - started, "ok", 200)

    warmup = [one() for _ in range(WARMUP_CALLS)]
    good = [s.seconds for s in warmup if s.outcome == "ok"]
    if not good:
        reasons = ", ".join(sorted({s.outcome for s in warmup}))
        result.add(
            "baseline", False, f"none of {WARMUP_CALLS} sequential calls succeeded ({reasons})"
        )
        result.measured = "no baseline: the provider does not answer"
        return result
    baseline = statistics.median(good)
    result.threshold = threshold_text(baseline)

    lock = threading.Lock()
    samples: list[CallSample] = []

    def timed(_: int) -> None:
        sample = one()
        with lock:
            samples.append(sample)

    started = clock()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="nexus-load") as pool:
        list(pool.map(timed, range(n)))
    wall = clock() - started
    return judge(
        result,
        samples,
        baseline_s=baseline,
        wall_s=wall,
        concurrency=concurrency,
        warmup=warmup,
    )


def judge(
    result: CheckResult,
    samples: list[CallSample],
    *,
    baseline_s: float,
    wall_s: float,
    concurrency: int,
    warmup: list[CallSample] | None = None,
) -> CheckResult:
    """Fill `result` from the load's samples (separate from the calls, so it can be tested on
    any latencies). p95 is the load's; failures count the sequential calls too, so a provider
    that failed most of them cannot hide behind a good load."""
    n = len(samples)
    seconds = [s.seconds for s in samples]
    p50, p95 = statistics.median(seconds), percentile(seconds, 0.95)
    every = [*(warmup or []), *samples]
    failed = [s for s in every if s.outcome != "ok"]
    kinds = Counter(
        f"{s.outcome}" + (f" (HTTP {s.status})" if s.status and s.status != 200 else "")
        for s in failed
    )
    limit = p95_limit(baseline_s)
    result.add(
        "p95",
        p95 <= limit,
        f"p95 {p95 * 1000:.1f} ms, p50 {p50 * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms "
        f"(limit {limit * 1000:.0f} ms; sequential p50 {baseline_s * 1000:.1f} ms)",
    )
    allowed = allowed_failures(len(every))
    why = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common()) or "none"
    result.add(
        "failures",
        len(failed) <= allowed,
        f"{len(failed)} of {len(every)} ({len(failed) / len(every):.0%}; at most {allowed}): {why}",
    )
    rate = n / wall_s if wall_s > 0 else float("inf")
    result.measured = (
        f"p95 {p95 * 1000:.1f} ms (sequential p50 {baseline_s * 1000:.1f} ms), "
        f"{len(failed)}/{len(every)} failed; {n} calls at concurrency {concurrency} in "
        f"{wall_s:.2f} s ({rate:.1f} calls/s)"
    )
    return result
