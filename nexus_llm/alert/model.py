"""The values that flow through alerting: rule evaluations in, grouped alert messages out.

An `Evaluation` is one rule's verdict on one label set (a team/project, a provider, or the
whole). The lifecycle turns firing evaluations into `Alert`s (fired, repeated, resolved); the
alerts of one run are grouped into one `AlertMessage`, which is what a channel receives and
what the spool keeps when a channel cannot be reached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

Labels = tuple[tuple[str, str], ...]
AlertKind = Literal["fired", "repeated", "resolved"]

RULE_TITLES: Final = {
    "cost_burn": "LLM cost burn high",
    "cost_burn_total": "LLM cost burn high (total)",
    "rate_limit_burst": "Burst of 429 rate-limit answers",
    "breaker_open": "Circuit breaker open",
}


def labels_of(mapping: Mapping[str, str]) -> Labels:
    """Labels in their canonical form: sorted (name, value) pairs."""
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


def fingerprint(rule: str, labels: Labels) -> str:
    """A stable id of one alert: the rule and its labels (never the value)."""
    text = json.dumps([rule, labels], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def format_value(value: float, unit: str) -> str:
    if unit == "USD/h":
        if value and abs(value) < 0.001:
            return f"{value:.2g} USD/h"  # a tiny (rehearsal) threshold must not read as 0
        return f"{value:,.4f} USD/h" if abs(value) < 1 else f"{value:,.2f} USD/h"
    if unit == "minutes":
        return f"{value:,.1f} minutes"
    return f"{value:,.0f} {unit}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One rule measured on one label set over the window."""

    rule: str
    labels: Labels
    value: float
    threshold: float
    unit: str  # "USD/h", "429 responses", "minutes"
    window_min: float
    firing: bool
    comparison: str = ">"  # how value meets threshold when firing: ">" or ">="
    started: str | None = None  # when the condition began, if the data says (a breaker's open)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.labels)

    def label_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.labels) or "all"

    def describe(self) -> str:
        """One line: the value beside its threshold (the caller marks the verdict)."""
        return (
            f"{self.rule} [{self.label_text()}]: {format_value(self.value, self.unit)} "
            f"(threshold {self.comparison} {format_value(self.threshold, self.unit)}, "
            f"window {self.window_min:g} min)"
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as a channel shows it."""

    kind: AlertKind
    rule: str
    labels: Labels
    value: float
    threshold: float
    unit: str
    window_min: float
    fingerprint: str
    since: str  # UTC ISO-8601: when it first fired
    comparison: str = ">"

    @property
    def title(self) -> str:
        return RULE_TITLES.get(self.rule, self.rule)

    def summary(self) -> str:
        """One plain-text line (no markup: the channel renderers escape it)."""
        where = " ".join(f"{k}={v}" for k, v in self.labels) or "all"
        head = {"fired": "FIRING", "repeated": "STILL FIRING", "resolved": "RESOLVED"}[self.kind]
        # A breaker's duration is its own measure; the other rules are measured over the window.
        over = "" if self.rule == "breaker_open" else f" over {self.window_min:g} min"
        return (
            f"[{head}] {self.title} ({where}): {format_value(self.value, self.unit)}, "
            f"threshold {self.comparison} {format_value(self.threshold, self.unit)}{over}; "
            f"since {self.since}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "labels": [list(pair) for pair in self.labels],
            "value": self.value,
            "threshold": self.threshold,
            "unit": self.unit,
            "window_min": self.window_min,
            "fingerprint": self.fingerprint,
            "since": self.since,
            "comparison": self.comparison,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Alert:
        labels = data["labels"]
        assert isinstance(labels, list)
        kind = str(data["kind"])
        if kind not in ("fired", "repeated", "resolved"):
            raise ValueError(f"unknown alert kind {kind!r}")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            rule=str(data["rule"]),
            labels=tuple((str(k), str(v)) for k, v in labels),
            value=float(data["value"]),  # type: ignore[arg-type]
            threshold=float(data["threshold"]),  # type: ignore[arg-type]
            unit=str(data["unit"]),
            window_min=float(data["window_min"]),  # type: ignore[arg-type]
            fingerprint=str(data["fingerprint"]),
            since=str(data["since"]),
            comparison=str(data.get("comparison", ">")),
        )


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """The alerts of one run, grouped: one message per channel."""

    env: str
    created_at: str  # UTC ISO-8601
    message_id: str
    alerts: tuple[Alert, ...] = field(default_factory=tuple)

    def headline(self) -> str:
        """The notification/fallback text: short, plain, counts by kind."""
        counts: dict[str, int] = {}
        for alert in self.alerts:
            counts[alert.kind] = counts.get(alert.kind, 0) + 1
        parts = [f"{n} {kind}" for kind, n in counts.items()]
        first = self.alerts[0].title if self.alerts else "no alerts"
        more = f" (+{len(self.alerts) - 1} more)" if len(self.alerts) > 1 else ""
        return f"Nexus [{self.env}] {first}{more}: {', '.join(parts) or 'nothing'}"

    def to_json(self) -> dict[str, object]:
        return {
            "env": self.env,
            "created_at": self.created_at,
            "message_id": self.message_id,
            "alerts": [a.to_json() for a in self.alerts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AlertMessage:
        alerts = data["alerts"]
        assert isinstance(alerts, list)
        return cls(
            env=str(data["env"]),
            created_at=str(data["created_at"]),
            message_id=str(data["message_id"]),
            alerts=tuple(Alert.from_json(a) for a in alerts),
        )
