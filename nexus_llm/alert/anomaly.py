"""The anomaly rules (DESIGN §2; the seed's ANOMALY_* variables), evaluated over the window.

- `cost_burn`: USD per hour spent by one team/project over the window > the cost threshold.
- `cost_burn_total`: the same for all spend together, firing only when no single team/project
  does (so one team's spike is one alert, not two) — as `NexusCostBurnHighTotal` in the shipped
  Prometheus rules.
- `rate_limit_burst`: rate-limit answers from one provider in the window (HTTP 429, or a
  rate-limit error inside a 200; every attempt, retried or not) >= the burst threshold.
- `breaker_open`: one provider's breaker not closed (open, or half-open probing) for >= the
  threshold in minutes. Its duration runs from the first `breaker_open` after the last close.

Every rule yields at least one evaluation, so a dry run can print each value beside its
threshold even when all is quiet.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ..config import Settings
from .model import Evaluation, labels_of
from .window import WindowData, minute_of

RULES = ("cost_burn", "cost_burn_total", "rate_limit_burst", "breaker_open")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The knobs of one evaluation; flags override the environment for one run."""

    window_min: float = 15.0
    cost_usd_per_hour: float = 2.0
    rate_limit_burst: int = 20
    breaker_open_min: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            window_min=float(settings.anomaly_window_min),
            cost_usd_per_hour=settings.anomaly_cost_usd_rate_threshold,
            rate_limit_burst=settings.anomaly_429_burst_threshold,
            breaker_open_min=settings.anomaly_breaker_open_min,
        )

    def override(self, **changes: float | int | None) -> Thresholds:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def evaluate(data: WindowData, now: datetime, thresholds: Thresholds) -> list[Evaluation]:
    """Every rule on `data` for the window that ends at `now` (minute resolution)."""
    window = thresholds.window_min
    after = minute_of(now - timedelta(minutes=window))
    hours = window / 60.0
    results: list[Evaluation] = []

    limit = thresholds.cost_usd_per_hour
    by_tags = data.cost_by_tags(after)
    per_team = [
        Evaluation(
            rule="cost_burn",
            labels=labels_of({"team": team, "project": project}),
            value=usd / hours,
            threshold=limit,
            unit="USD/h",
            window_min=window,
            firing=usd / hours > limit,
        )
        for (team, project), usd in sorted(by_tags.items())
    ]
    results += per_team or [
        Evaluation(
            rule="cost_burn",
            labels=(),
            value=0.0,
            threshold=limit,
            unit="USD/h",
            window_min=window,
            firing=False,
        )
    ]
    total = sum(by_tags.values()) / hours
    results.append(
        Evaluation(
            rule="cost_burn_total",
            labels=(),
            value=total,
            threshold=limit,
            unit="USD/h",
            window_min=window,
            firing=total > limit and not any(e.firing for e in per_team),
        )
    )

    burst = thresholds.rate_limit_burst
    by_provider = data.rate_limited_by_provider(after)
    for provider, count in sorted(by_provider.items()) or [("", 0)]:
        results.append(
            Evaluation(
                rule="rate_limit_burst",
                labels=labels_of({"provider": provider}) if provider else (),
                value=float(count),
                threshold=float(burst),
                unit="429 responses",
                window_min=window,
                firing=bool(provider) and count >= burst,
                comparison=">=",
            )
        )

    open_min = thresholds.breaker_open_min
    open_for: dict[str, float] = {}
    opened: dict[str, str] = {}
    for provider, trace in data.breakers.items():
        since = _parse_ts(trace.since) if trace.state != "closed" and trace.since else None
        if since is not None:
            open_for[provider] = (now - since).total_seconds() / 60.0
            opened[provider] = str(trace.since)
    for provider, minutes in sorted(open_for.items()) or [("", 0.0)]:
        results.append(
            Evaluation(
                rule="breaker_open",
                labels=labels_of({"provider": provider}) if provider else (),
                value=max(minutes, 0.0),
                threshold=open_min,
                unit="minutes",
                window_min=window,
                firing=bool(provider) and minutes >= open_min,
                comparison=">=",
                started=opened.get(provider),
            )
        )
    return results


def _parse_ts(ts: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None  # a damaged line's timestamp: no duration can be told from it
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
