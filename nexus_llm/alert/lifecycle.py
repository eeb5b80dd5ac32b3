"""The alert lifecycle, kept in the state store so every run and every node agrees.

Alertmanager's discipline, for a job that runs every few minutes:
- a fingerprint per rule + labels; the first firing sends one `fired` notification;
- while it keeps firing, a `repeated` one only after the repeat interval;
- when it stops firing, one `resolved`, and the fingerprint is forgotten.

The book (every firing fingerprint, since when, last sent) and the spool (messages not yet
delivered) are two keys of the store (Redis across nodes, else the SQLite file). A run works on
them only while it holds the run lock (`add` with a TTL), so two runs at the same moment — two
cron entries, two nodes — decide and deliver once; the book is also written with a
compare-and-swap, so a run whose lock expired under it cannot overwrite a newer decision.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from ..observe.audit import iso_ts
from ..state.base import StateStore
from .model import Alert, AlertKind, AlertMessage, Evaluation

BOOK_KEY = "alert:book"
SPOOL_KEY = "alert:spool"
LOCK_KEY = "alert:lock"
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0  # Alertmanager's default repeat_interval
SPOOL_LIMIT = 100  # undelivered messages kept; older ones are dropped, with an audit event
_BOOK_TTL_S = 35 * 86400.0  # a book nobody touched for a month is stale


class BookChangedError(Exception):
    """Another run changed the alert book while this one held an expired lock."""


@dataclass(slots=True)
class SpoolEntry:
    message: AlertMessage
    attempts: int = 0
    last_error: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "message": self.message.to_json(),
            "attempts": self.attempts,
            "last_error": self.last_error,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SpoolEntry:
        message = data["message"]
        assert isinstance(message, dict)
        return cls(
            AlertMessage.from_json(message),
            int(data.get("attempts", 0)),  # type: ignore[call-overload]
            str(data.get("last_error", "")),
        )


class AlertBook:
    """Decides what to send for a run's evaluations, and keeps what could not be sent.

    Args:
        store: the shared state store.
        repeat_interval_s: how long a still-firing alert stays quiet before it is repeated.
        lock_ttl_s: how long a run may hold the lock (longer than its slowest delivery).
        lock_wait_s: how long a run waits for another run's lock before giving up.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        repeat_interval_s: float = DEFAULT_REPEAT_INTERVAL_S,
        lock_ttl_s: float = 600.0,
        lock_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.repeat_interval_s = repeat_interval_s
        self.lock_ttl_s = lock_ttl_s
        self.lock_wait_s = lock_wait_s
        self._sleep = sleep
        self._monotonic = monotonic

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the run lock for the block; yields False when another run kept it too long."""
        token = uuid.uuid4().hex.encode()
        deadline = self._monotonic() + self.lock_wait_s
        while not self.store.add(LOCK_KEY, token, ttl_s=self.lock_ttl_s):
            if self._monotonic() >= deadline:
                yield False
                return
            self._sleep(0.05)
        try:
            yield True
        finally:
            self.store.delete(LOCK_KEY, only_if=token)

    def advance(self, evaluations: Sequence[Evaluation], now: datetime) -> list[Alert]:
        """Move the book to this run's evaluations; returns the alerts due now (to send).

        Call it inside `exclusive()`.
        """
        raw = self.store.get(BOOK_KEY)
        book = _decode_book(raw)
        now_s = now.timestamp()
        due: list[Alert] = []
        firing = {e.fingerprint: e for e in evaluations if e.firing}
        latest = {e.fingerprint: e for e in evaluations}
        for fp, evaluation in firing.items():
            entry = book.get(fp)
            if entry is None:
                # A breaker alert dates from the breaker's opening; the others from now.
                book[fp] = {"since": evaluation.started or iso_ts(now), "last_sent": now_s}
                due.append(_alert("fired", evaluation, book[fp]))
            elif now_s - float(entry["last_sent"]) >= self.repeat_interval_s:  # type: ignore[arg-type]
                entry["last_sent"] = now_s
                due.append(_alert("repeated", evaluation, entry))
            book[fp].update(_snapshot(evaluation))
        for fp in [fp for fp in book if fp not in firing]:
            entry = book.pop(fp)
            current = latest.get(fp)
            if current is not None:
                entry.update(_snapshot(current))
            else:  # the series went quiet altogether: nothing left to measure
                entry["value"] = 0.0
            due.append(_alert_from_entry("resolved", fp, entry))
        new = json.dumps(book, separators=(",", ":"), sort_keys=True).encode()
        if new != (raw or b"{}") and not self.store.compare_and_swap(
            BOOK_KEY, raw, new, ttl_s=_BOOK_TTL_S
        ):
            raise BookChangedError("the alert book changed during this run; nothing was decided")
        return due

    def firing(self) -> dict[str, dict[str, object]]:
        """The fingerprints the book holds as firing (for status output and tests)."""
        return _decode_book(self.store.get(BOOK_KEY))

    # -- the spool ------------------------------------------------------------------------

    def spool(self) -> list[SpoolEntry]:
        raw = self.store.get(SPOOL_KEY)
        if not raw:
            return []
        try:
            return [SpoolEntry.from_json(e) for e in json.loads(raw)]
        except (ValueError, KeyError, TypeError, AssertionError):
            return []  # a damaged spool cannot be delivered; start a fresh one

    def save_spool(self, entries: Sequence[SpoolEntry]) -> list[SpoolEntry]:
        """Keep `entries` (oldest first); returns the ones dropped beyond the limit."""
        dropped = list(entries[:-SPOOL_LIMIT]) if len(entries) > SPOOL_LIMIT else []
        kept = list(entries[len(dropped) :])
        if kept:
            body = json.dumps([e.to_json() for e in kept], separators=(",", ":"))
            self.store.put(SPOOL_KEY, body.encode())
        else:
            self.store.delete(SPOOL_KEY)
        return dropped


def new_message(env: str, alerts: Sequence[Alert], now: datetime) -> AlertMessage:
    return AlertMessage(
        env=env, created_at=iso_ts(now), message_id=uuid.uuid4().hex[:12], alerts=tuple(alerts)
    )


def combine(entries: Sequence[SpoolEntry]) -> AlertMessage:
    """Every pending message as one: a channel receives one message per run, and each alert
    in it once — its latest state (a spooled `fired` later `repeated` is shown once)."""
    newest = entries[-1].message
    latest: dict[str, Alert] = {}
    for entry in entries:
        for alert in entry.message.alerts:
            earlier = latest.pop(alert.fingerprint, None)
            # The channel never saw the first firing: keep calling it fired.
            if earlier is not None and earlier.kind == "fired" and alert.kind == "repeated":
                alert = replace(alert, kind="fired")
            latest[alert.fingerprint] = alert
    return AlertMessage(newest.env, newest.created_at, newest.message_id, tuple(latest.values()))


def _decode_book(raw: bytes | None) -> dict[str, dict[str, object]]:
    if not raw:
        return {}
    try:
        book = json.loads(raw)
    except ValueError:
        return {}
    return book if isinstance(book, dict) else {}


def _snapshot(evaluation: Evaluation) -> dict[str, object]:
    return {
        "rule": evaluation.rule,
        "labels": [list(pair) for pair in evaluation.labels],
        "value": evaluation.value,
        "threshold": evaluation.threshold,
        "unit": evaluation.unit,
        "window_min": evaluation.window_min,
        "comparison": evaluation.comparison,
    }


def _alert(kind: AlertKind, evaluation: Evaluation, entry: dict[str, object]) -> Alert:
    return Alert(
        kind=kind,
        rule=evaluation.rule,
        labels=evaluation.labels,
        value=evaluation.value,
        threshold=evaluation.threshold,
        unit=evaluation.unit,
        window_min=evaluation.window_min,
        fingerprint=evaluation.fingerprint,
        since=str(entry["since"]),
        comparison=evaluation.comparison,
    )


def _alert_from_entry(kind: AlertKind, fp: str, entry: dict[str, object]) -> Alert:
    labels = entry.get("labels", [])
    assert isinstance(labels, list)
    return Alert(
        kind=kind,
        rule=str(entry.get("rule", "")),
        labels=tuple((str(k), str(v)) for k, v in labels),
        value=float(entry.get("value", 0.0)),  # type: ignore[arg-type]
        threshold=float(entry.get("threshold", 0.0)),  # type: ignore[arg-type]
        unit=str(entry.get("unit", "")),
        window_min=float(entry.get("window_min", 0.0)),  # type: ignore[arg-type]
        fingerprint=fp,
        since=str(entry.get("since", "")),
        comparison=str(entry.get("comparison", ">")),
    )
