"""Check 4 — identical calls reach the provider once; the rest are dedupe hits (seed §B.4).

The calls go out at once, from threads, so the check proves singleflight (identical calls in
flight wait for the first) as well as the TTL cache. OK when at most one call reached the
provider and every other one is an `llm_dedupe_hit` with a zero-cost ledger line. (Zero calls
is fine too: a run within the TTL of an earlier one is answered from the cache.)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from nexus_llm import Client, NexusError, Response, carry_tags
from nexus_llm.observe.query import JsonlView

from .result import CheckResult

SEED_NG_HINT = (
    "every call reached the provider and cost accumulates: check LLM_DEDUPE and "
    "LLM_DEDUPE_TTL_S, and that purpose / team / project are identical (they are part of the key)"
)
THRESHOLD = "<= 1 provider call; every other call an llm_dedupe_hit with cost 0"


def run_dedupe(
    client: Client,
    *,
    prompt: str,
    n: int,
    purpose: str,
    team: str | None = None,
    project: str | None = None,
    provider: str | None = None,
    count_requests: Callable[[], int] | None = None,
) -> CheckResult:
    """`count_requests`: the emulator's request counter, to cross-check from its side."""
    result = CheckResult("dedupe", threshold=THRESHOLD, hint=SEED_NG_HINT)
    before = count_requests() if count_requests else 0

    def one() -> Response:
        return client.generate(
            prompt, purpose=purpose, team=team, project=project, provider=provider
        )

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            responses = list(pool.map(lambda _: carry_tags(one)(), range(n)))
    except NexusError as error:
        result.add("calls", False, " ".join(f"a call failed: {error}".split()))
        return result
    paid = [r for r in responses if not r.dedupe_hit]
    hits = [r for r in responses if r.dedupe_hit]
    result.add(
        "provider calls",
        len(paid) <= 1,
        f"{len(paid)} of {n} calls reached the provider, {len(hits)} were dedupe hits",
    )
    audit = JsonlView(client.settings.audit_log_path)
    ledger = JsonlView(client.settings.cost_ledger_path)
    recent_audit = audit.recent()
    hit_ids = {r.request_id for r in hits}
    audited = {str(e.get("request_id")) for e in recent_audit if e.get("event") == "llm_dedupe_hit"}
    result.add(
        "audit log",
        hit_ids <= audited,
        f"{len(hit_ids & audited)} llm_dedupe_hit line(s) for {len(hit_ids)} hit(s) "
        f"in {audit.path}",
    )
    free = [
        line
        for line in ledger.recent()
        if line.get("request_id") in hit_ids
        and line.get("dedupe_hit") is True
        and line.get("actual_cost_usd") == 0
    ]
    saved = sum(_usd(line.get("saved_cost_usd")) for line in free)
    result.add(
        "cost ledger",
        len(free) == len(hit_ids),
        f"{len(free)} zero-cost dedupe line(s), saved ${saved:.7f}, in {ledger.path}",
    )
    if count_requests is not None:
        received = count_requests() - before
        result.add(
            "emulator",
            received == len(paid),
            f"the provider emulator received {received} request(s) for {n} calls",
        )
    result.measured = f"{len(paid)} provider call(s), {len(hits)} dedupe hit(s) of {n}"
    return result


def _usd(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
