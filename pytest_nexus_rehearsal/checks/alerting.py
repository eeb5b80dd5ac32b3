"""Check 3 — alert wiring: the dry run, then one real send with a lowered threshold.

1. `nexus anomaly --dry-run` equivalent: every rule evaluated, each value beside its
   threshold, nothing sent.
2. The cost threshold lowered below the burn the window holds (half of it), so exactly one
   cost-spike alert fires; the run delivers it as one message.
3. The same run again: the alert is still firing but inside its repeat interval, so nothing is
   sent — the seed's "no duplicate-alert bomb", proved on the spot.

Where the message goes is the caller's choice (`settings`): the local webhook sink, or the
real webhook when the rehearsal was told to post there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from nexus_llm.alert.watch import AnomalyWatch, WatchResult
from nexus_llm.config import Settings
from nexus_llm.state.base import StateStore, StoreUnavailableError

from ..cli_anomaly import WEBHOOK_HINT
from .result import CheckResult

_NO_BURN_HINT = (
    "no cost in the window: make a call first (check 1), or check LLM_COST_LEDGER_PATH — the "
    "anomaly run reads the same ledger the client writes"
)


def run_alert_check(
    settings: Settings,
    *,
    where: str,
    received: Callable[[], int] | None = None,
    store: StateStore | None = None,
) -> CheckResult:
    """Run check 3 on `settings`; `where` names the destination for the evidence, and
    `received` (for a sink) counts the messages that arrived."""
    result = CheckResult("alert wiring", threshold="dry run exits 0; exactly 1 message per alert")
    result.hint = WEBHOOK_HINT
    try:
        with AnomalyWatch(settings, store=store) as watch:
            dry = watch.dry_run()
    except StoreUnavailableError as exc:
        result.add("dry run", False, f"the alert state store is unavailable ({exc})")
        return result
    result.add("dry run", True, _values(dry) + "; nothing sent")
    burn = next(e.value for e in dry.evaluations if e.rule == "cost_burn_total")
    if burn <= 0:
        result.add("cost spike", False, "the window holds no cost to spike on")
        result.hint = _NO_BURN_HINT
        return result
    lowered = replace(dry.thresholds, cost_usd_per_hour=burn / 2)
    before = received() if received else 0
    with AnomalyWatch(settings, thresholds=lowered, store=store) as watch:
        first = watch.run()
        second = watch.run()
    fired = [a for a in first.due if a.kind == "fired" and a.rule.startswith("cost_burn")]
    if first.delivery_failed:
        detail = first.delivery.describe() if first.delivery else "no webhook configured"
        result.add("real send", False, f"to {where}: {detail}")
        return result
    result.add(
        "cost spike",
        len(fired) == 1,
        f"threshold lowered to {lowered.cost_usd_per_hour:.6f} USD/h (burn {burn:.6f} USD/h): "
        f"{len(fired)} cost alert(s) fired",
    )
    channel = first.delivery.channel if first.delivery else None
    result.add(
        "real send",
        first.message is not None and channel is not None,
        f"1 message with {len(first.message.alerts) if first.message else 0} alert(s) "
        f"delivered to {where} via {channel}",
    )
    result.add(
        "no duplicate",
        second.message is None,
        "an immediate second run sent nothing (still firing, inside the repeat interval)"
        if second.message is None
        else "the second run sent again",
    )
    if received is not None:
        arrived = received() - before
        result.add("arrived", arrived == 1, f"the sink received {arrived} message(s)")
    result.measured = (
        f"dry run OK; {len(fired)} alert fired, "
        f"{(received() - before) if received else 1} message delivered ({where})"
    )
    return result


def _values(result: WatchResult) -> str:
    shown = [e for e in result.evaluations if not e.labels or e.firing][:4]
    return "; ".join(e.describe() for e in shown)
