"""The alert lifecycle end to end: ledger → rules → book in a real store → the webhook sink.

The flood test is the seed's "duplicate-alert bomb" turned into arithmetic: 50 scheduled runs
across two simulated hours of a constant cost spike must send one `fired`, the repeats the
interval allows, and after the spike clears one `resolved` — on the SQLite file and on a real
Redis. Two runs at the same moment must send one message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from nexus_llm.alert.anomaly import Thresholds
from nexus_llm.alert.lifecycle import BOOK_KEY, AlertBook
from nexus_llm.alert.notify import NotifyRouter
from nexus_llm.alert.watch import AnomalyWatch, WatchResult
from nexus_llm.config import Secret, Settings
from nexus_llm.observe.audit import iso_ts
from nexus_llm.observe.jsonl import JsonlAppender
from nexus_llm.state.base import StateStore
from nexus_llm.state.redis import RedisStore
from nexus_llm.state.sqlite import SQLiteStore
from pytest_nexus_rehearsal.sink import WebhookSink
from tests.support import RedisServer, jsonl_lines

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SPIKE = Thresholds(window_min=15, cost_usd_per_hour=2.0, rate_limit_burst=20, breaker_open_min=5)


class Scene:
    """Files, a settable clock and a store: one simulated deployment."""

    def __init__(self, tmp_path: Path, store_factory: Callable[[], StateStore]) -> None:
        self.settings = Settings(
            env="test",
            audit_log_path=tmp_path / "logs" / "llm_audit.jsonl",
            cost_ledger_path=tmp_path / "logs" / "llm_cost_ledger.jsonl",
        )
        self.ledger = JsonlAppender(self.settings.cost_ledger_path)
        self.now = START
        self.store_factory = store_factory

    def spend(
        self, usd: float, *, at: datetime, team: str = "ops", project: str = "finops"
    ) -> None:
        self.ledger.append(
            {
                "ts": iso_ts(at),
                "request_id": f"r-{at.timestamp()}",
                "provider": "gemini",
                "model": "gemini-2.5-flash",
                "team": team,
                "project": project,
                "purpose": "ops",
                "actual_cost_usd": usd,
            }
        )

    def watch(self, sink: WebhookSink, **kwargs: object) -> AnomalyWatch:
        router = NotifyRouter(
            slack_url=Secret(sink.slack_url), teams_url=None, sleep=lambda _s: None
        )
        return AnomalyWatch(
            self.settings,
            thresholds=SPIKE,
            store=self.store_factory(),
            router=router,
            clock=lambda: self.now,
            **kwargs,  # type: ignore[arg-type]
        )

    def run(self, sink: WebhookSink, **kwargs: object) -> WatchResult:
        with self.watch(sink, **kwargs) as watch:
            try:
                return watch.run()
            finally:
                watch.router.close()
                watch.store.close()

    def events(self, name: str) -> list[dict[str, object]]:
        return [e for e in jsonl_lines(self.settings.audit_log_path) if e["event"] == name]


def alerts_sent(kind: str) -> float:
    labels = {"rule": "cost_burn", "channel": "slack", "kind": kind}
    return REGISTRY.get_sample_value("nexus_alerts_sent_total", labels) or 0.0


@pytest.fixture(params=["sqlite", "redis"])
def scene(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> Iterator[Scene]:
    if request.param == "sqlite":
        path = tmp_path / "state.sqlite3"
        yield Scene(tmp_path, lambda: SQLiteStore(path))
        return
    prefix = f"nexus-test:{request.node.name}:"
    url = redis_server.url

    def open_redis() -> StateStore:
        return RedisStore.from_client(redis.Redis.from_url(url), prefix=prefix)

    yield Scene(tmp_path, open_redis)
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def test_flood_of_runs_sends_one_fired_the_allowed_repeats_and_one_resolved(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    # A constant spike: $0.50 every minute = 30 USD/h against a 2 USD/h threshold.
    # 50 runs, one every 144 s, cover two hours (0 … 7,056 s). With a 30-minute repeat
    # interval the alert fires at run 0 (t=0) and repeats when 1,800 s have passed since the
    # last send: run 13 (t=1,872), run 26 (t=3,744), run 39 (t=5,616); run 52 would be next.
    written_until = START - timedelta(minutes=20)
    results: list[WatchResult] = []
    sent_before = {kind: alerts_sent(kind) for kind in ("fired", "repeated", "resolved")}
    for run in range(50):
        scene.now = START + timedelta(seconds=144 * run)
        while written_until <= scene.now:
            scene.spend(0.50, at=written_until)
            written_until += timedelta(minutes=1)
        results.append(scene.run(webhook_sink, repeat_interval_s=1800))

    kinds = [a.kind for r in results for a in r.due]
    assert kinds == ["fired", "repeated", "repeated", "repeated"]
    assert [i for i, r in enumerate(results) if r.due] == [0, 13, 26, 39]
    assert all(r.firing for r in results), "the spike was firing at every run"
    assert len(webhook_sink.received("slack")) == 4

    # The spike clears: no spending for longer than the window, then two more runs.
    scene.now += timedelta(minutes=16)
    cleared = scene.run(webhook_sink, repeat_interval_s=1800)
    scene.now += timedelta(minutes=5)
    quiet = scene.run(webhook_sink, repeat_interval_s=1800)
    assert [a.kind for a in cleared.due] == ["resolved"]
    assert quiet.due == []
    assert quiet.message is None
    assert len(webhook_sink.received("slack")) == 5
    assert len(scene.events("alert_fired")) == 1
    assert len(scene.events("alert_repeated")) == 3
    assert len(scene.events("alert_resolved")) == 1
    sent = {kind: alerts_sent(kind) - sent_before[kind] for kind in sent_before}
    assert sent == {"fired": 1, "repeated": 3, "resolved": 1}
    # Every message passed the sink's Block Kit checks.
    assert all(not post.shape_errors for post in webhook_sink.received())


class SlowBookStore:
    """A store whose alert-book reads take a while: without the run lock, both runs would
    read the empty book before either wrote it, and both would send."""

    def __init__(self, inner: StateStore) -> None:
        self._inner = inner
        self.name = inner.name

    def get(self, key: str) -> bytes | None:
        value = self._inner.get(key)
        if key == BOOK_KEY:
            threading.Event().wait(0.3)
        return value

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_two_runs_at_the_same_moment_send_one_message(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    scene.spend(5.0, at=START - timedelta(minutes=1))
    barrier = threading.Barrier(2)
    results: list[WatchResult] = []
    errors: list[BaseException] = []

    def one_run() -> None:
        router = NotifyRouter(slack_url=Secret(webhook_sink.slack_url), teams_url=None)
        store = scene.store_factory()
        watch = AnomalyWatch(
            scene.settings,
            thresholds=SPIKE,
            store=SlowBookStore(store),  # type: ignore[arg-type]
            router=router,
            clock=lambda: scene.now,
        )
        try:
            barrier.wait(5)
            results.append(watch.run())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            router.close()
            store.close()

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert len(results) == 2
    assert sorted(len(r.due) for r in results) == [0, 1]
    assert len(webhook_sink.received()) == 1
    assert len(scene.events("alert_fired")) == 1


def test_a_run_that_cannot_get_the_lock_decides_nothing(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    scene.spend(5.0, at=START - timedelta(minutes=1))
    holder = AlertBook(scene.store_factory())
    with holder.exclusive() as held:
        assert held
        result = scene.run(webhook_sink, lock_wait_s=0.0)
    assert result.lock_busy
    assert result.due == []
    assert result.message is None
    assert webhook_sink.received() == []
    # Once the lock is free, the next run fires.
    assert [a.kind for a in scene.run(webhook_sink).due] == ["fired"]


def test_undelivered_alert_is_spooled_and_sent_by_the_next_run(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    scene.spend(5.0, at=START - timedelta(minutes=1))
    webhook_sink.fail("slack", "no_service")
    failed = scene.run(webhook_sink)
    assert failed.delivery_failed
    assert failed.pending == 1
    assert [a.kind for a in failed.due] == ["fired"]
    [event] = scene.events("notify_failed")
    assert "404" in str(event["detail"])
    assert "no_service" in str(event["detail"])
    assert webhook_sink.slack_url not in str(event)

    webhook_sink.reset()
    scene.now += timedelta(minutes=5)
    retried = scene.run(webhook_sink)
    assert retried.due == [], "still firing inside the repeat interval: nothing new is due"
    assert retried.message is not None
    assert not retried.delivery_failed
    assert retried.pending == 0
    [post] = webhook_sink.received()
    assert "LLM cost burn high" in str(post.payload)
    # Delivered once: the spool is empty now.
    scene.now += timedelta(minutes=5)
    assert scene.run(webhook_sink).message is None
    assert len(webhook_sink.received()) == 1


def test_primary_failure_falls_back_to_the_other_channel(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    scene.spend(5.0, at=START - timedelta(minutes=1))
    webhook_sink.fail("slack", "channel_is_archived")
    router = NotifyRouter(
        slack_url=Secret(webhook_sink.slack_url),
        teams_url=Secret(webhook_sink.teams_url),
        sleep=lambda _s: None,
    )
    with AnomalyWatch(
        scene.settings,
        thresholds=SPIKE,
        store=scene.store_factory(),
        router=router,
        clock=lambda: scene.now,
    ) as watch:
        result = watch.run()
        watch.store.close()
    assert result.delivery is not None
    assert result.delivery.channel == "teams"
    assert [p.channel for p in webhook_sink.received()] == ["slack", "teams"]
    assert webhook_sink.received("teams")[0].status == 202


def test_one_team_spike_is_one_alert_and_total_spread_is_another(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    at = START - timedelta(minutes=2)
    scene.spend(1.0, at=at, team="ops")  # 4 USD/h: fires for team ops alone
    result = scene.run(webhook_sink)
    assert [(a.rule, dict(a.labels)) for a in result.due] == [
        ("cost_burn", {"project": "finops", "team": "ops"})
    ]
    # Later, spread over three teams each under the threshold, but together over it.
    scene.now += timedelta(minutes=30)
    for team in ("a", "b", "c"):
        scene.spend(0.2, at=scene.now - timedelta(minutes=1), team=team)  # 0.8 USD/h each
    spread = scene.run(webhook_sink)
    assert sorted((a.kind, a.rule) for a in spread.due) == [
        ("fired", "cost_burn_total"),
        ("resolved", "cost_burn"),
    ]
    assert len(webhook_sink.received()) == 2, "one message per run, grouping both alerts"


def test_dry_run_changes_nothing_and_sends_nothing(scene: Scene, webhook_sink: WebhookSink) -> None:
    scene.spend(5.0, at=START - timedelta(minutes=1))
    with scene.watch(webhook_sink) as watch:
        dry = watch.dry_run()
        watch.router.close()
        assert AlertBook(watch.store).firing() == {}
        watch.store.close()
    assert [e.rule for e in dry.firing] == ["cost_burn"]
    assert webhook_sink.received() == []
    assert not (scene.settings.audit_log_path.parent / "llm_audit.jsonl.anomaly.json").exists()
    assert [a.kind for a in scene.run(webhook_sink).due] == ["fired"]


def test_a_spooled_alert_goes_out_once_in_its_latest_state(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    """Fired (undelivered), then repeated (undelivered): the next delivery shows the alert
    once, as fired — the channel never saw it."""
    scene.spend(5.0, at=START - timedelta(minutes=1))
    webhook_sink.fail("slack", "no_service")
    assert scene.run(webhook_sink, repeat_interval_s=60).delivery_failed
    scene.now += timedelta(minutes=2)
    scene.spend(5.0, at=scene.now - timedelta(minutes=1))
    second = scene.run(webhook_sink, repeat_interval_s=60)
    assert [a.kind for a in second.due] == ["repeated"]
    assert second.pending == 2
    webhook_sink.reset()
    scene.now += timedelta(seconds=10)
    third = scene.run(webhook_sink, repeat_interval_s=60)
    assert third.message is not None
    assert [(a.kind, a.rule) for a in third.message.alerts] == [("fired", "cost_burn")]
    [post] = webhook_sink.received()
    assert str(post.payload).count("LLM cost burn high") >= 1


def test_a_breaker_alert_dates_from_the_breaker_opening(
    scene: Scene, webhook_sink: WebhookSink
) -> None:
    opened = START - timedelta(minutes=8)
    JsonlAppender(scene.settings.audit_log_path).append(
        {"ts": iso_ts(opened), "event": "breaker_open", "provider": "gemini"}
    )
    [alert] = scene.run(webhook_sink).due
    assert alert.rule == "breaker_open"
    assert alert.since == iso_ts(opened)
    assert alert.value == pytest.approx(8.0)
