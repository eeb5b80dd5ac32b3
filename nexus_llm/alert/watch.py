"""One anomaly run: read the window, evaluate the rules, move the alert book, deliver.

This is what `nexus anomaly` (and the `anomaly_watch` cron job) does, as a library so the
rehearsal, the CLI and the tests drive the same code:

    scan (incremental) → evaluate → [lock] advance the book → spool → deliver the spool → [unlock]

Delivery happens from the spool, never directly: a message is written to the store before the
first attempt, removed only once a channel took it, and retried by the next run otherwise (with
a `notify_failed` audit event each time). A dry run reads and evaluates only: it changes no
state, writes no checkpoint and sends nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..config import Settings
from ..observe import metrics
from ..observe.audit import AuditLog
from ..state.base import StateStore, StoreUnavailableError
from .anomaly import Thresholds, evaluate
from .lifecycle import (
    DEFAULT_REPEAT_INTERVAL_S,
    AlertBook,
    SpoolEntry,
    combine,
    new_message,
)
from .model import Alert, AlertMessage, Evaluation
from .notify import DeliveryResult, NotifyRouter
from .window import ScanStats, WindowReader, checkpoint_path_for

_MIN_RETENTION_MIN = 60.0


@dataclass(slots=True)
class WatchResult:
    """What one run saw, decided and delivered."""

    now: datetime
    thresholds: Thresholds
    evaluations: list[Evaluation]
    scan: ScanStats
    channels: list[str]
    dry_run: bool = False
    due: list[Alert] = field(default_factory=list)
    message: AlertMessage | None = None
    delivery: DeliveryResult | None = None
    pending: int = 0  # messages left in the spool after this run
    dropped: int = 0
    lock_busy: bool = False
    channel_problems: list[str] = field(default_factory=list)  # known before any send

    @property
    def firing(self) -> list[Evaluation]:
        return [e for e in self.evaluations if e.firing]

    @property
    def delivery_failed(self) -> bool:
        return self.message is not None and not (self.delivery and self.delivery.delivered)


class AnomalyWatch:
    """Runs the anomaly rules for one environment's files, store and webhooks.

    Args:
        settings: paths, thresholds, webhooks and the store come from here.
        thresholds: this run's thresholds (default: the settings').
        store: the alert state store (default: `open_alert_store(settings)`).
        router: the channels (default: from the settings' webhooks).
        checkpoint: keep the incremental checkpoint beside the audit log.
        clock: now, as an aware datetime.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        thresholds: Thresholds | None = None,
        store: StateStore | None = None,
        router: NotifyRouter | None = None,
        audit: AuditLog | None = None,
        repeat_interval_s: float = DEFAULT_REPEAT_INTERVAL_S,
        checkpoint: bool = True,
        clock: Callable[[], datetime] | None = None,
        lock_wait_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.thresholds = thresholds or Thresholds.from_settings(settings)
        self.audit = audit or AuditLog(settings.audit_log_path, env=settings.env)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._store = store
        self._owns_store = store is None
        self._router = router
        self._owns_router = router is None
        self.repeat_interval_s = repeat_interval_s
        self.lock_wait_s = lock_wait_s
        self.reader = WindowReader(
            settings.audit_log_path,
            settings.cost_ledger_path,
            retention_min=max(self.thresholds.window_min, _MIN_RETENTION_MIN),
            checkpoint_path=checkpoint_path_for(settings.audit_log_path) if checkpoint else None,
        )

    @property
    def router(self) -> NotifyRouter:
        if self._router is None:
            self._router = NotifyRouter.from_settings(
                self.settings, timeout_s=self.settings.notify_timeout_s
            )
        return self._router

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_alert_store(self.settings, self.audit)
        return self._store

    def close(self) -> None:
        if self._owns_router and self._router is not None:
            self._router.close()
        if self._owns_store and self._store is not None:
            self._store.close()

    def __enter__(self) -> AnomalyWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dry_run(self) -> WatchResult:
        """Evaluate every rule; change nothing, send nothing."""
        now = self._clock()
        scan = self.reader.scan(now, need_min=self.thresholds.window_min, save=False)
        evaluations = evaluate(scan.data, now, self.thresholds)
        result = WatchResult(
            now, self.thresholds, evaluations, scan.stats, self.router.channels, dry_run=True
        )
        result.channel_problems = channel_problems(self.settings)
        return result

    def run(self) -> WatchResult:
        """Evaluate, move the alert book, and deliver what is due (and what was spooled)."""
        now = self._clock()
        scan = self.reader.scan(now, need_min=self.thresholds.window_min)
        evaluations = evaluate(scan.data, now, self.thresholds)
        result = WatchResult(now, self.thresholds, evaluations, scan.stats, self.router.channels)
        book = AlertBook(
            self.store, repeat_interval_s=self.repeat_interval_s, lock_wait_s=self.lock_wait_s
        )
        with book.exclusive() as held:
            if not held:
                result.lock_busy = True
                return result
            result.due = book.advance(evaluations, now)
            spool = book.spool()
            if result.due:
                message = new_message(self.settings.env, result.due, now)
                spool.append(SpoolEntry(message))
                for alert in result.due:
                    self._audit_alert(alert, message.message_id)
            if spool:
                delivered = self._deliver(spool, result)
                dropped = book.save_spool([] if delivered else spool)
                for entry in dropped:
                    self._emit(
                        "notify_failed",
                        message_id=entry.message.message_id,
                        alerts=len(entry.message.alerts),
                        dropped=True,
                        detail=f"spool full ({len(spool)} messages): the oldest was dropped",
                    )
                result.dropped = len(dropped)
                result.pending = 0 if delivered else len(spool) - len(dropped)
        return result

    def _deliver(self, spool: list[SpoolEntry], result: WatchResult) -> bool:
        """Send the whole spool as one message; True when a channel took it."""
        message = combine(spool)
        result.message = message
        if not result.channels:
            detail = "no webhook configured: set SLACK_WEBHOOK_URL or TEAMS_WEBHOOK_URL"
            self._failed(spool, message, detail, attempts=0)
            return False
        delivery = self.router.deliver(message)
        result.delivery = delivery
        if delivery.delivered:
            channel = delivery.channel or ""
            for alert in message.alerts:
                metrics.ALERTS_SENT.labels(alert.rule, channel, alert.kind).inc()
            return True
        attempts = sum(d.attempts for d in delivery.deliveries)
        self._failed(spool, message, delivery.describe(), attempts=attempts)
        return False

    def _failed(
        self, spool: list[SpoolEntry], message: AlertMessage, detail: str, *, attempts: int
    ) -> None:
        for entry in spool:
            entry.attempts += 1
            entry.last_error = detail
        self._emit(
            "notify_failed",
            message_id=message.message_id,
            alerts=len(message.alerts),
            attempts=attempts,
            pending_messages=len(spool),
            detail=detail,
        )

    def _audit_alert(self, alert: Alert, message_id: str) -> None:
        self._emit(
            f"alert_{alert.kind}",
            rule=alert.rule,
            labels=dict(alert.labels),
            value=round(alert.value, 6),
            threshold=alert.threshold,
            unit=alert.unit,
            window_min=alert.window_min,
            fingerprint=alert.fingerprint,
            since=alert.since,
            message_id=message_id,
        )

    def _emit(self, event: str, **fields: object) -> None:
        # The audit log is evidence, not a reason to lose the alert.
        with contextlib.suppress(OSError):
            self.audit.emit(event, **fields)


def open_alert_store(settings: Settings, audit: AuditLog) -> StateStore:
    """Redis (REDIS_URL) falling back to the SQLite file — never process memory.

    The LLM client may fall back to memory to keep calls flowing; alerting may not: a one-shot
    cron process with an empty memory store would re-send every firing alert on every run.
    """
    from ..state.resilient import ResilientStore
    from ..state.sqlite import SQLiteStore

    local = SQLiteStore(settings.state_path)  # StoreUnavailableError: the caller says so
    knobs = settings.protection
    if knobs.redis_url is None:
        return local
    from ..state.redis import RedisStore

    def degraded(reason: str) -> None:
        with contextlib.suppress(OSError):
            audit.emit("state_degraded", backend="redis", fallback="sqlite", reason=reason)

    try:
        primary = RedisStore(knobs.redis_url.reveal(), timeout_s=knobs.redis_timeout_s)
    except ValueError:
        local.close()
        raise StoreUnavailableError("REDIS_URL cannot be parsed") from None

    def recovered(outage_s: float) -> None:
        with contextlib.suppress(OSError):
            audit.emit("state_recovered", backend="redis", outage_s=round(outage_s, 3))

    return ResilientStore(primary, local, on_degraded=degraded, on_recovered=recovered)


def channel_problems(settings: Settings) -> list[str]:
    """What is wrong with the configured webhooks before anything is sent (for dry runs)."""
    from .teams import is_legacy_teams_url

    url = settings.teams_webhook_url
    if url is not None and is_legacy_teams_url(url.reveal()):
        return [
            "TEAMS_WEBHOOK_URL is a retired Office 365 connector URL (webhook.office.com): "
            "Teams no longer accepts it; create a Workflows webhook (Teams → channel → "
            "Workflows → 'Post to a channel when a webhook request is received')"
        ]
    return []
