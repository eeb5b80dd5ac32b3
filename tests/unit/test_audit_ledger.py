"""The audit log, the cost ledger and the read-side JsonlView, with time pinned."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

from nexus_llm.observe.audit import EVENTS, AuditLog, iso_ts
from nexus_llm.observe.ledger import CostLedger, LedgerEntry
from nexus_llm.observe.query import JsonlView

LEDGER_FIELDS = {
    "ts",
    "request_id",
    "provider",
    "model",
    "team",
    "project",
    "purpose",
    "env",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "actual_cost_usd",
    "approx_tokens",
    "price_version",
    "dedupe_hit",
    "saved_cost_usd",
}

DESIGN_EVENTS = {
    "llm_success",
    "llm_error",
    "llm_retry",
    "llm_fallback",
    "llm_dedupe_hit",
    "breaker_open",
    "breaker_half_open",
    "breaker_closed",
    "alert_fired",
    "alert_repeated",
    "alert_resolved",
    "notify_failed",
    "job_run",
    "state_degraded",
}


def _entry(**changes: object) -> LedgerEntry:
    fields: dict[str, object] = {
        "request_id": "req-1",
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "team": "ops",
        "project": "finops",
        "purpose": "summary",
        "input_tokens": 100,
        "output_tokens": 20,
        "cached_tokens": 10,
        "reasoning_tokens": 5,
        "actual_cost_usd": 0.0000803,
        "approx_tokens": False,
        "price_version": "2026-11-26",
    }
    fields.update(changes)
    return LedgerEntry(**fields)  # type: ignore[arg-type]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone set to Asia/Tokyo (UTC+9) for the test, then restored."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class TestTimestamps:
    """Every file uses UTC ISO-8601 with milliseconds and a Z."""

    def test_iso_ts_of_utc(self) -> None:
        """A UTC moment renders with milliseconds and a trailing Z."""
        moment = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC)
        assert iso_ts(moment) == "2026-03-04T05:06:07.891Z"

    def test_iso_ts_converts_other_zones(self) -> None:
        """A moment in another zone is converted to UTC first."""
        tokyo = timezone(timedelta(hours=9))
        moment = datetime(2026, 1, 1, 8, 30, tzinfo=tokyo)
        assert iso_ts(moment) == "2025-12-31T23:30:00.000Z"

    @freeze_time("2026-11-26T10:20:30.456789Z")
    def test_audit_ts_is_frozen_utc_z(self, tmp_path: Path) -> None:
        """The default clock stamps events with the current UTC time ending in Z."""
        log = AuditLog(tmp_path / "audit.jsonl", env="test")
        record = log.emit("job_run", job="anomaly")
        assert record["ts"] == "2026-11-26T10:20:30.456Z"
        assert _lines(log.path)[0]["ts"] == "2026-11-26T10:20:30.456Z"

    @pytest.mark.usefixtures("tokyo_local_time")
    def test_ledger_ts_is_utc_whatever_the_local_zone(self, tmp_path: Path) -> None:
        """With the process in a UTC+9 zone, the ledger's ts is still the UTC time."""
        ledger = CostLedger(tmp_path / "ledger.jsonl", env="test")
        before = datetime.now(UTC).replace(microsecond=0)
        record = ledger.append(_entry())
        after = datetime.now(UTC)
        ts = str(record["ts"])
        assert ts.endswith("Z")
        assert time.localtime().tm_gmtoff == 9 * 3600
        assert before <= datetime.fromisoformat(ts.replace("Z", "+00:00")) <= after

    def test_injected_clock_is_used(self, tmp_path: Path) -> None:
        """An injected clock sets ts for the audit log and the ledger."""
        moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        audit = AuditLog(tmp_path / "a.jsonl", env="x", clock=lambda: moment)
        ledger = CostLedger(tmp_path / "l.jsonl", env="x", clock=lambda: moment)
        assert audit.emit("job_run")["ts"] == "2026-01-02T03:04:05.000Z"
        assert ledger.append(_entry())["ts"] == "2026-01-02T03:04:05.000Z"


class TestAuditLog:
    """AuditLog.emit writes one event a line."""

    def test_design_events_are_known(self) -> None:
        """Every event DESIGN §4.2 names is accepted."""
        assert DESIGN_EVENTS <= EVENTS

    @pytest.mark.parametrize("event", sorted(DESIGN_EVENTS))
    def test_each_known_event_is_written(self, tmp_path: Path, event: str) -> None:
        """Each known event is written with ts, event and env."""
        log = AuditLog(tmp_path / "audit.jsonl", env="staging")
        log.emit(event, request_id="r1")
        (record,) = _lines(log.path)
        assert record["event"] == event
        assert record["env"] == "staging"
        assert record["request_id"] == "r1"
        assert str(record["ts"]).endswith("Z")

    @pytest.mark.parametrize("event", ["llm_succes", "LLM_SUCCESS", "", "custom_event"])
    def test_unknown_event_raises(self, tmp_path: Path, event: str) -> None:
        """An unknown event name raises ValueError and writes nothing."""
        log = AuditLog(tmp_path / "audit.jsonl", env="test")
        with pytest.raises(ValueError, match="unknown audit event"):
            log.emit(event)
        assert not log.path.exists()

    def test_fields_are_kept_and_returned(self, tmp_path: Path) -> None:
        """Caller fields appear in the line, and emit returns the same record."""
        log = AuditLog(tmp_path / "audit.jsonl", env="test")
        record = log.emit(
            "llm_error", request_id="r", status=503, error_type="overloaded", latency_ms=12.5
        )
        assert _lines(log.path) == [record]
        assert record["status"] == 503
        assert record["error_type"] == "overloaded"
        assert list(record)[:3] == ["ts", "event", "env"]

    def test_creates_directory(self, tmp_path: Path) -> None:
        """The audit log's directory is created on first use."""
        log = AuditLog(tmp_path / "logs" / "deep" / "audit.jsonl", env="test")
        log.emit("job_run")
        assert log.path.is_file()


class TestLedger:
    """CostLedger.append writes every DESIGN §4.2 field."""

    @freeze_time("2026-11-26T12:00:00Z")
    def test_every_design_field(self, tmp_path: Path) -> None:
        """A ledger line holds every §4.2 field with the entry's values."""
        ledger = CostLedger(tmp_path / "ledger.jsonl", env="prod")
        ledger.append(_entry())
        (line,) = _lines(ledger.path)
        assert set(line) >= LEDGER_FIELDS
        assert line["ts"] == "2026-11-26T12:00:00.000Z"
        assert line["env"] == "prod"
        assert line["request_id"] == "req-1"
        assert (line["provider"], line["model"]) == ("gemini", "gemini-2.5-flash")
        assert (line["team"], line["project"], line["purpose"]) == ("ops", "finops", "summary")
        assert (line["input_tokens"], line["output_tokens"]) == (100, 20)
        assert (line["cached_tokens"], line["reasoning_tokens"]) == (10, 5)
        assert line["actual_cost_usd"] == pytest.approx(0.0000803)
        assert line["approx_tokens"] is False
        assert line["price_version"] == "2026-11-26"
        assert line["dedupe_hit"] is False
        assert line["saved_cost_usd"] == 0.0

    def test_dedupe_hit_line(self, tmp_path: Path) -> None:
        """A dedupe hit records dedupe_hit true, cost 0 and what it saved."""
        ledger = CostLedger(tmp_path / "ledger.jsonl", env="prod")
        ledger.append(_entry(dedupe_hit=True, actual_cost_usd=0.0, saved_cost_usd=0.0012))
        (line,) = _lines(ledger.path)
        assert line["dedupe_hit"] is True
        assert line["actual_cost_usd"] == 0.0
        assert line["saved_cost_usd"] == pytest.approx(0.0012)

    def test_lines_accumulate(self, tmp_path: Path) -> None:
        """Each append adds exactly one line, in order."""
        ledger = CostLedger(tmp_path / "ledger.jsonl", env="prod")
        for n in range(3):
            ledger.append(_entry(request_id=f"r{n}"))
        assert [line["request_id"] for line in _lines(ledger.path)] == ["r0", "r1", "r2"]


@pytest.fixture
def audit_view(tmp_path: Path) -> JsonlView:
    """An audit log with a handful of events spread over an hour, and a view over it."""
    path = tmp_path / "audit.jsonl"
    moments = iter(datetime(2026, 11, 26, 10, minute, tzinfo=UTC) for minute in (0, 15, 30, 45))
    log = AuditLog(path, env="test", clock=lambda: next(moments))
    log.emit("llm_success", request_id="a", team="ops", project="finops")
    log.emit("llm_error", request_id="b", team="ops", project="web")
    log.emit("llm_success", request_id="b", team="ml", project="finops")
    log.emit("breaker_open", provider="gemini")
    return JsonlView(path)


class TestJsonlView:
    """Read-side queries over a JSONL file."""

    def test_events(self, audit_view: JsonlView) -> None:
        """events(name) returns only that event, in file order."""
        assert [r["request_id"] for r in audit_view.events("llm_success")] == ["a", "b"]
        assert audit_view.events("alert_fired") == []

    def test_where_matches_every_field(self, audit_view: JsonlView) -> None:
        """where(**fields) keeps records matching all given fields."""
        assert [r["request_id"] for r in audit_view.where(team="ops")] == ["a", "b"]
        assert [r["event"] for r in audit_view.where(team="ops", project="web")] == ["llm_error"]
        assert audit_view.where(team="ops", project="nope") == []

    def test_for_request(self, audit_view: JsonlView) -> None:
        """for_request returns every event of one request."""
        assert [r["event"] for r in audit_view.for_request("b")] == ["llm_error", "llm_success"]

    def test_since_datetime_and_string(self, audit_view: JsonlView) -> None:
        """since() keeps records at or after a moment, given as datetime or ISO string."""
        moment = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
        assert [r["event"] for r in audit_view.since(moment)] == ["llm_success", "breaker_open"]
        assert len(audit_view.since("2026-11-26T10:15:00.000Z")) == 3
        assert audit_view.since(datetime(2026, 11, 27, tzinfo=UTC)) == []

    def test_since_string_without_milliseconds(self, audit_view: JsonlView) -> None:
        """since("...T10:15:00Z") includes the record stamped 10:15:00.000Z and later ones."""
        found = audit_view.since("2026-11-26T10:15:00Z")
        assert [r["event"] for r in found] == ["llm_error", "llm_success", "breaker_open"]

    def test_since_with_other_zone(self, audit_view: JsonlView) -> None:
        """since() converts a non-UTC datetime to UTC before comparing."""
        berlin = timezone(timedelta(hours=1))
        assert len(audit_view.since(datetime(2026, 11, 26, 11, 40, tzinfo=berlin))) == 1

    def test_count_len_and_exists(self, audit_view: JsonlView, tmp_path: Path) -> None:
        """count() and len() agree; exists() says whether the file is there."""
        assert audit_view.count() == len(audit_view) == 4
        assert audit_view.exists()
        assert not JsonlView(tmp_path / "absent.jsonl").exists()
        assert JsonlView(tmp_path / "absent.jsonl").count() == 0

    def test_view_sees_new_lines_and_reports_damage(self, audit_view: JsonlView) -> None:
        """Each query re-reads the file and last_stats counts skipped lines."""
        assert audit_view.count() == 4
        assert audit_view.last_stats.skipped == 0
        with audit_view.path.open("ab") as handle:
            handle.write(b'{"event":"job_run","ts":"2026-11-26T11:00:00.000Z"}\nbroken\n{"par')
        assert audit_view.count() == 5
        assert audit_view.last_stats.skipped_corrupt == 1
        assert audit_view.last_stats.skipped_partial == 1
