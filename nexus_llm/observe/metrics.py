"""Prometheus metrics (DESIGN §4.3): `nexus_` prefix, base units, `_total` on counters.

Label cardinality is bounded. Provider, model, outcome, direction and reason come from small
vocabularies; team, project and purpose are the user's words, so each of them admits at most
`LLM_METRICS_MAX_TAG_VALUES` distinct values per process (default 100) and folds the rest into
`_other` — the ledger keeps the exact tags for the report.

Under `PROMETHEUS_MULTIPROC_DIR` prometheus-client writes per-process files, so xdist workers
and pre-fork servers aggregate (`nexus metrics serve` reads them); gauges keep the most recent
live value.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

OTHER = "_other"

REQUESTS = Counter(
    "nexus_llm_requests_total",
    "LLM provider requests (every attempt), by provider, model and outcome.",
    ["provider", "model", "outcome"],
)
LATENCY = Histogram(
    "nexus_llm_request_duration_seconds",
    "Time from sending an LLM request to its parsed answer or error.",
    ["provider", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
TOKENS = Counter(
    "nexus_llm_tokens_total",
    "Tokens billed, by direction: input (cached included), output (reasoning included), "
    "cached, reasoning.",
    ["provider", "model", "direction"],
)
COST = Counter(
    "nexus_llm_cost_usd_total",
    "Cost of LLM calls in US dollars, by provider, team, project and purpose.",
    ["provider", "team", "project", "purpose"],
)
RATE_LIMITED = Counter(
    "nexus_llm_rate_limited_total",
    "Rate-limit answers from providers (HTTP 429, or a rate-limit error inside a 200), every "
    "attempt counted.",
    ["provider"],
)
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
DEDUPE_SAVED = Counter(
    "nexus_llm_dedupe_saved_usd_total",
    "US dollars not spent thanks to dedupe hits.",
    ["provider", "purpose"],
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
ALERTS_SENT = Counter(
    "nexus_alerts_sent_total",
    "Alert notifications delivered, by rule, channel and kind (fired, repeated, resolved).",
    ["rule", "channel", "kind"],
)
JOB_LAST_SUCCESS = Gauge(
    "nexus_job_last_success_timestamp_seconds",
    "Unix time of the last successful run of a scheduled job.",
    ["job"],
    multiprocess_mode="max",
)


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}
_CHILDREN_MAX = 10_000  # label sets are bounded already; this only caps a pathological case


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: `labels()` validates and converts on every call,
    and each LLM call touches half a dozen series. (prometheus-client keeps the child itself,
    and its multi-process values follow a fork, so a remembered child stays right.)"""
    key = (id(metric), labels)
    found = _CHILDREN.get(key)
    if found is None:
        if len(_CHILDREN) >= _CHILDREN_MAX:
            _CHILDREN.clear()
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


class TagGuard:
    """Admits the first `limit` distinct values of each tag; later ones become `_other`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, tag: str, value: str) -> str:
        seen = self._seen.get(tag)
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault(tag, set())
            if value in seen:
                return value
            if len(seen) >= self._limit:
                return OTHER
            seen.add(value)
            return value


def _limit_from_env() -> int:
    raw = os.environ.get("LLM_METRICS_MAX_TAG_VALUES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 100


guard_tag = TagGuard(_limit_from_env())
