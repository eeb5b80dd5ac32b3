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
from nexus_llm.observe.audit import AuditLog
from nexus_llm.state.base import StateStore, StoreUnavailableError

from ..cli_anomaly import WEBHOOK_HINT, hint_for
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
    audit: AuditLog | None = None,
    checkpoint: bool = True,
) -> CheckResult:
    """Run check 3 on `settings`; `where` names the destination for the evidence, and
    `received` (for a sink) counts the messages that arrived.

    A rehearsal that sends to a sink passes its own `store` and `audit` (and no checkpoint),
    so its lowered-threshold alert never enters the environment's real alert book or spool.
    """
    result = CheckResult("alert wiring", threshold="dry run exits 0; exactly 1 message per alert")
    result.hint = WEBHOOK_HINT
    try:
        with AnomalyWatch(settings, store=store, audit=audit, checkpoint=checkpoint) as watch:
            dry = watch.dry_run()
    except StoreUnavailableError as exc:
        result.add("dry run", False, f"the alert state store is unavailable ({exc})")
        return result
    result.add("dry run", True, _values(dry) + "; nothing sent")
    for problem in dry.channel_problems:
        result.add("channel", False, problem)
    if dry.channel_problems:
        return result
    burn = next(e.value for e in dry.evaluations if e.rule == "cost_burn_total")
    if burn <= 0:
        result.add("cost spike", False, "the window holds no cost to spike on")
        result.hint = _NO_BURN_HINT
        return result
    lowered = replace(dry.thresholds, cost_usd_per_hour=burn / 2)
    before = received() if received else 0
    with AnomalyWatch(
        settings, thresholds=lowered, store=store, audit=audit, checkpoint=checkpoint
    ) as watch:
        first = watch.run()
        second = watch.run()
    fired = [a for a in first.due if a.kind == "fired" and a.rule.startswith("cost_burn")]
    if first.delivery_failed:
        detail = first.delivery.describe() if first.delivery else "no webhook configured"
        result.add("real send", False, f"to {where}: {detail}")
        result.hint = hint_for(first)
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
    """Every rule's value beside its threshold (at most 8 label sets, the firing ones first)."""
    ordered = sorted(result.evaluations, key=lambda e: not e.firing)
    shown = "; ".join(e.describe() + (" FIRING" if e.firing else "") for e in ordered[:8])
    more = len(ordered) - 8
    return shown + (f"; … {more} more" if more > 0 else "")
