"""Prometheus metrics of the protections (the request/cost/token families join in the
metrics release). Names follow Prometheus conventions: `nexus_` prefix, base units, `_total`
on counters. Label values are bounded: provider names, reasons from a fixed vocabulary.

Under `PROMETHEUS_MULTIPROC_DIR` prometheus-client writes per-process files, so xdist workers
and pre-fork servers aggregate; the gauge keeps the most recent live value.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RETRIES = Counter(
    "nexus_llm_retries_total",
    "Retries of LLM calls, by provider and the error that caused them.",
    ["provider", "reason"],
)
FALLBACKS = Counter(
    "nexus_llm_fallbacks_total",
    "Calls moved from one provider to the next.",
    ["from_provider", "to_provider", "reason"],
)
DEDUPE_HITS = Counter(
    "nexus_llm_dedupe_hits_total",
    "Calls answered from the dedupe cache or by an identical call in flight.",
    ["provider", "purpose", "kind"],
)
BREAKER_STATE = Gauge(
    "nexus_breaker_state",
    "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
    ["provider"],
    multiprocess_mode="livemostrecent",
)
BREAKER_TRANSITIONS = Counter(
    "nexus_breaker_transitions_total",
    "Circuit breaker transitions, by provider and the state entered.",
    ["provider", "to"],
)
STATE_DEGRADED = Counter(
    "nexus_state_degraded_total",
    "Times the shared state store fell back to the local store.",
    ["backend"],
)
