"""Check 8 on `local`: a deliberate fault, the breaker and one alert; recovery and one resolve.

The seed's round trip, on the emulator: the provider starts rejecting the key → calls fail and
the breaker opens → the anomaly watch, run as cron would once the breaker has been open past
ANOMALY_BREAKER_OPEN_MIN, sends one alert (and a second run sends nothing: no duplicate-alert
bomb) → the fault is removed → after the cooldown a probe call closes the breaker → the next
watch run sends one `resolved`. The anomaly runs look at the clock a few minutes ahead, so the
rehearsal does not wait out the five minutes; everything else is real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from nexus_llm import Client
from nexus_llm.alert.watch import AnomalyWatch, WatchResult
from nexus_llm.config import Settings
from nexus_llm.emulator import Emulator
from nexus_llm.errors import NexusError
from nexus_llm.observe.query import JsonlView

from .result import CheckResult

SEED_HINT = (
    "duplicate-alert bomb or a breaker that stays open after recovery: check "
    "ANOMALY_REPEAT_INTERVAL_MIN and the alert state store (REDIS_URL / LLM_STATE_PATH) shared "
    "by every anomaly run, and LLM_BREAKER_COOLDOWN_S / the half-open probe"
)
_COOLDOWN_S = 0.5
_MAX_CALLS = 12


def rehearse_fault_recovery(
    settings: Settings, emulator: Emulator, *, provider: str, received: Callable[[], int]
) -> CheckResult:
    result = CheckResult(
        "fault recovery",
        threshold="breaker opens, 1 alert while open, breaker closes, 1 resolved",
        hint=SEED_HINT,
    )
    knobs = replace(
        settings.protection,
        breaker_failure_threshold=3,
        breaker_cooldown_s=_COOLDOWN_S,
        retry_max_attempts=1,
        dedupe_enabled=False,
    )
    faulty = settings.replace(protection=knobs, provider_order=(provider,))
    audit = JsonlView(settings.audit_log_path)
    before = received()
    started = datetime.now(UTC)

    emulator.inject(provider, "bad_key")
    try:
        with Client(faulty) as client:
            failures = _call_until_open(client, provider, audit, started)
    finally:
        emulator.clear_faults(provider)
    opened = [e for e in _since(audit, started) if e.get("event") == "breaker_open"]
    causes = {
        str(e.get("error_type"))
        for e in _since(audit, started)
        if e.get("event") == "llm_error" and e.get("provider") == provider
    }
    if not result.add(
        "fault",
        bool(opened),
        f"{failures} failing call(s) with a rejected key opened the {provider} breaker; "
        f"cause in the audit log: {', '.join(sorted(causes)) or 'none'}",
    ):
        return result

    threshold_min = settings.anomaly_breaker_open_min
    alert_at = datetime.now(UTC) + timedelta(minutes=threshold_min + 1)
    first = _watch(settings, alert_at)
    second = _watch(settings, alert_at + timedelta(minutes=1))
    fired = [a for a in first.due if a.rule == "breaker_open" and a.kind == "fired"]
    result.add(
        "alert",
        len(fired) == 1 and not first.delivery_failed,
        f"with the watch's clock {threshold_min + 1:g} min ahead (simulated, no real wait) "
        f"it sent {len(fired)} breaker alert(s): " + (fired[0].summary() if fired else "none"),
    )
    result.add(
        "no excess alerts",
        second.message is None,
        "the next run sent nothing" if second.message is None else "the next run sent again",
    )

    time.sleep(_COOLDOWN_S * 1.5)
    with Client(faulty) as client:
        try:
            client.generate("recovery probe", purpose="ops", provider=provider, dedupe=False)
            recovered = True
        except NexusError:
            recovered = False
    closed = [
        e
        for e in _since(audit, started)
        if e.get("event") == "breaker_closed" and e.get("provider") == provider
    ]
    result.add(
        "recovery",
        recovered and bool(closed),
        "after the fault was removed a probe call succeeded and the breaker closed"
        if recovered and closed
        else "the breaker did not close after the fault was removed",
    )
    third = _watch(settings, alert_at + timedelta(minutes=2))
    resolved = [a for a in third.due if a.rule == "breaker_open" and a.kind == "resolved"]
    result.add(
        "resolved",
        len(resolved) == 1 and not third.delivery_failed,
        f"the next watch run sent {len(resolved)} resolved notification(s)",
    )
    messages = received() - before
    result.add("messages", messages == 2, f"{messages} message(s) in all (fired + resolved)")
    result.measured = (
        f"breaker opened after {failures} failure(s); {messages} message(s); "
        f"breaker closed after recovery: {'yes' if closed else 'no'}"
    )
    return result


def _call_until_open(client: Client, provider: str, audit: JsonlView, started: datetime) -> int:
    failures = 0
    for _ in range(_MAX_CALLS):
        try:
            client.generate("fault rehearsal", purpose="ops", provider=provider, dedupe=False)
        except NexusError:
            failures += 1
        if any(e.get("event") == "breaker_open" for e in _since(audit, started)):
            break
    return failures


def _since(audit: JsonlView, started: datetime) -> list[dict[str, object]]:
    return audit.since(started)


def _watch(settings: Settings, at: datetime) -> WatchResult:
    with AnomalyWatch(settings, clock=lambda: at) as watch:
        return watch.run()
