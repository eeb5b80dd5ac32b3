"""The anomaly rules on hand-built windows: values, thresholds, edges and label sets.

`WindowData` is filled through its own `fold_*` methods with records as the files carry them;
the numbers are worked out by hand (USD per hour = USD in the window / window hours).

Minute resolution, as measured here: the window ending at `now` holds the minutes strictly after
`minute_of(now - window)` — for now = 14:00:30 and 15 minutes, the buckets 13:46 … 14:00 (the
current, partial minute included; later minutes too). Spend at 13:45:40, although less than
15 minutes before now, is outside; the rate always divides by the full window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nexus_llm.alert.anomaly import RULES, Thresholds, evaluate
from nexus_llm.alert.model import Evaluation, fingerprint, labels_of
from nexus_llm.alert.window import WindowData, minute_of
from nexus_llm.observe.audit import iso_ts

NOW = datetime(2026, 11, 26, 14, 0, 30, tzinfo=UTC)
DEFAULT = Thresholds()  # 15 min, 2.00 USD/h, 20 × 429, 5 min open


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def spend(
    data: WindowData, moment: datetime, usd: float, team: str = "payments", project: str = "web"
) -> None:
    record: dict[str, object] = {
        "ts": iso_ts(moment),
        "team": team,
        "project": project,
        "actual_cost_usd": usd,
    }
    data.fold_ledger(record, minute_of(moment))


def audit(data: WindowData, moment: datetime, event: str, provider: str, **fields: object) -> None:
    record: dict[str, object] = {"ts": iso_ts(moment), "event": event, "provider": provider}
    data.fold_audit(record | fields, minute_of(moment))


def only(results: list[Evaluation], rule: str) -> list[Evaluation]:
    return [e for e in results if e.rule == rule]


def by_labels(results: list[Evaluation], rule: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {e.labels: e.value for e in only(results, rule)}


def firing(results: list[Evaluation], rule: str) -> list[dict[str, str]]:
    return [dict(e.labels) for e in only(results, rule) if e.firing]


class TestCostBurn:
    def test_usd_per_hour_per_team_and_project(self) -> None:
        """$1.00 in a 15-minute window is 4.00 USD/h; each team/project on its own."""
        data = WindowData()
        for minute in (1, 5, 9, 13):
            spend(data, at(minute), 0.25)  # payments/web: $1.00
        spend(data, at(2), 0.125, "search", "index")  # search/index: $0.125 → 0.50 USD/h
        spend(data, at(3), 0.375, "search", "api")  # search/api: $0.375 → 1.50 USD/h
        results = evaluate(data, NOW, DEFAULT)
        assert by_labels(results, "cost_burn") == {
            labels_of({"team": "payments", "project": "web"}): 4.0,
            labels_of({"team": "search", "project": "index"}): 0.5,
            labels_of({"team": "search", "project": "api"}): 1.5,
        }
        assert firing(results, "cost_burn") == [{"project": "web", "team": "payments"}]
        web = only(results, "cost_burn")[-1]
        assert (web.unit, web.threshold, web.window_min, web.comparison) == (
            "USD/h",
            2.0,
            15.0,
            ">",
        )

    def test_the_window_length_divides_the_spend(self) -> None:
        """The same $1.00 over a 30-minute window is 2.00 USD/h; over 60, 1.00."""
        data = WindowData()
        spend(data, at(3), 1.0)
        for window, rate in ((30.0, 2.0), (60.0, 1.0), (5.0, 12.0)):
            results = evaluate(data, NOW, DEFAULT.override(window_min=window))
            assert [e.value for e in only(results, "cost_burn")] == [rate]

    @pytest.mark.parametrize(("threshold", "fires"), [(2.0, False), (1.99, True), (2.01, False)])
    def test_firing_is_strictly_above_the_threshold(self, threshold: float, fires: bool) -> None:
        """$0.50 in 15 minutes is exactly 2.00 USD/h: equal to the threshold does not fire."""
        data = WindowData()
        spend(data, at(4), 0.5)
        results = evaluate(data, NOW, DEFAULT.override(cost_usd_per_hour=threshold))
        (burn,) = only(results, "cost_burn")
        assert burn.value == 2.0
        assert burn.firing is fires

    def test_minutes_outside_the_window_are_ignored(self) -> None:
        """Only the buckets after minute_of(now - window) count (see the module docstring)."""
        data = WindowData()
        spend(data, NOW.replace(second=59), 0.0625)  # the current minute, 14:00: in
        spend(data, datetime(2026, 11, 26, 13, 46, 0, tzinfo=UTC), 0.125)  # 13:46: in
        spend(data, datetime(2026, 11, 26, 13, 45, 40, tzinfo=UTC), 1.0)  # 13:45: out (!)
        spend(data, datetime(2026, 11, 26, 13, 30, tzinfo=UTC), 2.0)  # long gone
        spend(data, datetime(2026, 11, 26, 14, 3, tzinfo=UTC), 0.25)  # ahead of now: in
        (burn,) = only(evaluate(data, NOW, DEFAULT), "cost_burn")
        assert burn.value == (0.0625 + 0.125 + 0.25) * 4

    def test_the_same_minute_whatever_the_seconds_of_now(self) -> None:
        """now = 14:00:00 and 14:00:59 see the same buckets: 13:46 … 14:00."""
        data = WindowData()
        spend(data, datetime(2026, 11, 26, 13, 45, 59, tzinfo=UTC), 1.0)
        spend(data, datetime(2026, 11, 26, 13, 46, 0, tzinfo=UTC), 0.25)
        for second in (0, 59):
            (burn,) = only(evaluate(data, NOW.replace(second=second), DEFAULT), "cost_burn")
            assert burn.value == 1.0

    def test_free_and_odd_costs_are_not_spend(self) -> None:
        """Zero, negative, boolean and non-numeric costs are not folded."""
        data = WindowData()
        for usd in (0.0, -1.0, True, "0.5", None):
            record: dict[str, object] = {"team": "t", "project": "p", "actual_cost_usd": usd}
            data.fold_ledger(record, minute_of(at(2)))
        assert data.cost == {}

    def test_total_fires_only_when_no_single_team_does(self) -> None:
        """Two teams at 1.50 USD/h: the total (3.00) fires. One team at 3.00: only that team."""
        quiet = WindowData()
        spend(quiet, at(2), 0.375, "payments", "web")
        spend(quiet, at(2), 0.375, "search", "index")
        results = evaluate(quiet, NOW, DEFAULT)
        assert firing(results, "cost_burn") == []
        (total,) = only(results, "cost_burn_total")
        assert (total.labels, total.value, total.firing) == ((), 3.0, True)

        spike = WindowData()
        spend(spike, at(2), 0.75, "payments", "web")
        spend(spike, at(2), 0.375, "search", "index")
        results = evaluate(spike, NOW, DEFAULT)
        assert firing(results, "cost_burn") == [{"project": "web", "team": "payments"}]
        (total,) = only(results, "cost_burn_total")
        assert (total.value, total.firing) == (4.5, False)

    def test_total_at_the_threshold_does_not_fire(self) -> None:
        """The total compares strictly too: 2.00 USD/h against 2.00."""
        data = WindowData()
        spend(data, at(2), 0.25, "a", "x")
        spend(data, at(3), 0.25, "b", "y")
        (total,) = only(evaluate(data, NOW, DEFAULT), "cost_burn_total")
        assert (total.value, total.firing) == (2.0, False)


class TestRateLimitBurst:
    def test_every_429_error_counts_per_provider(self) -> None:
        """Each llm_error with status 429 counts (every attempt); other events and statuses,
        and 429s outside the window, do not."""
        data = WindowData()
        for attempt in range(1, 6):
            audit(data, at(2), "llm_error", "gemini", status=429, attempt=attempt)
        audit(data, at(2), "llm_retry", "gemini", status=429)
        audit(data, at(2), "llm_error", "gemini", status=500)
        audit(data, at(2), "llm_error", "gemini", status=503)
        audit(data, at(2), "llm_error", "gemini", status="429")  # a string is not the status
        audit(data, at(2), "llm_success", "gemini", status=200)
        audit(data, at(20), "llm_error", "gemini", status=429)  # outside the window
        audit(data, at(3), "llm_error", "openai", status=429)
        audit(data, at(3), "llm_error", "", status=429)  # no provider: "unknown"
        results = evaluate(data, NOW, DEFAULT.override(rate_limit_burst=5))
        assert by_labels(results, "rate_limit_burst") == {
            (("provider", "gemini"),): 5.0,
            (("provider", "openai"),): 1.0,
            (("provider", "unknown"),): 1.0,
        }
        assert firing(results, "rate_limit_burst") == [{"provider": "gemini"}]

    @pytest.mark.parametrize(("count", "fires"), [(19, False), (20, True), (21, True)])
    def test_fires_at_the_threshold(self, count: int, fires: bool) -> None:
        """The burst compares with >=: 20 answers against 20 fires."""
        data = WindowData()
        for i in range(count):
            audit(data, at(1 + i % 10), "llm_error", "gemini", status=429)
        (burst,) = only(evaluate(data, NOW, DEFAULT), "rate_limit_burst")
        assert (burst.value, burst.firing, burst.comparison) == (float(count), fires, ">=")
        assert burst.unit == "429 responses"


class TestBreakerOpen:
    def test_open_half_open_open_keeps_the_first_since(self) -> None:
        """A probe that fails reopens the breaker; its duration still runs from the first open."""
        data = WindowData()
        audit(data, at(12), "breaker_open", "gemini")
        audit(data, at(7), "breaker_half_open", "gemini")
        audit(data, at(6.5), "breaker_open", "gemini")
        trace = data.breakers["gemini"]
        assert (trace.state, trace.since, trace.last) == ("open", iso_ts(at(12)), iso_ts(at(6.5)))
        (breaker,) = only(evaluate(data, NOW, DEFAULT), "breaker_open")
        assert (dict(breaker.labels), breaker.value, breaker.firing) == (
            {"provider": "gemini"},
            12.0,
            True,
        )

    def test_half_open_counts_as_not_closed(self) -> None:
        """Half-open (probing) is still not closed."""
        data = WindowData()
        audit(data, at(9), "breaker_open", "gemini")
        audit(data, at(1), "breaker_half_open", "gemini")
        (breaker,) = only(evaluate(data, NOW, DEFAULT), "breaker_open")
        assert (breaker.value, breaker.firing) == (9.0, True)

    def test_closed_resets_and_a_new_open_starts_over(self) -> None:
        """A close forgets the old since; the next open starts a new one."""
        data = WindowData()
        audit(data, at(60), "breaker_open", "gemini")
        audit(data, at(30), "breaker_closed", "gemini")
        assert data.breakers["gemini"].since is None
        (breaker,) = only(evaluate(data, NOW, DEFAULT), "breaker_open")
        assert (breaker.labels, breaker.value, breaker.firing) == ((), 0.0, False)

        audit(data, at(2), "breaker_open", "gemini")
        (breaker,) = only(evaluate(data, NOW, DEFAULT), "breaker_open")
        assert (breaker.value, breaker.firing) == (2.0, False)

    @pytest.mark.parametrize(("open_for", "fires"), [(4.99, False), (5.0, True), (5.01, True)])
    def test_fires_at_breaker_open_min(self, open_for: float, fires: bool) -> None:
        """Open for exactly 5 minutes against 5 fires (>=)."""
        data = WindowData()
        audit(data, at(open_for), "breaker_open", "openai")
        (breaker,) = only(evaluate(data, NOW, DEFAULT), "breaker_open")
        assert breaker.value == pytest.approx(open_for)
        assert (breaker.firing, breaker.comparison, breaker.unit) == (fires, ">=", "minutes")

    def test_one_evaluation_per_provider_not_closed(self) -> None:
        """Each provider whose breaker is not closed is evaluated on its own."""
        data = WindowData()
        audit(data, at(8), "breaker_open", "openai")
        audit(data, at(3), "breaker_open", "glm")
        audit(data, at(20), "breaker_open", "gemini")
        audit(data, at(10), "breaker_closed", "gemini")
        results = evaluate(data, NOW, DEFAULT)
        assert by_labels(results, "breaker_open") == {
            (("provider", "glm"),): 3.0,
            (("provider", "openai"),): 8.0,
        }
        assert firing(results, "breaker_open") == [{"provider": "openai"}]


class TestEveryRule:
    def test_every_rule_yields_an_evaluation_without_data(self) -> None:
        """An empty window still gives each rule one quiet evaluation, for the dry run."""
        results = evaluate(WindowData(), NOW, DEFAULT)
        assert {e.rule for e in results} == set(RULES)
        assert not any(e.firing for e in results)

    def test_without_data_each_rule_gives_one_unlabeled_zero(self) -> None:
        """Each rule's quiet evaluation: no labels, value 0, its own unit and comparison."""
        results = evaluate(WindowData(), NOW, DEFAULT)
        assert [(e.rule, e.labels, e.value, e.unit, e.comparison, e.firing) for e in results] == [
            ("cost_burn", (), 0.0, "USD/h", ">", False),
            ("cost_burn_total", (), 0.0, "USD/h", ">", False),
            ("rate_limit_burst", (), 0.0, "429 responses", ">=", False),
            ("breaker_open", (), 0.0, "minutes", ">=", False),
        ]

    def test_spend_outside_the_window_only_leaves_zero_evaluations(self) -> None:
        """Buckets that are all too old still give every rule a quiet evaluation."""
        data = WindowData()
        spend(data, at(40), 5.0)
        audit(data, at(40), "llm_error", "gemini", status=429)
        results = evaluate(data, NOW, DEFAULT)
        assert {e.rule for e in results} == set(RULES)
        assert not any(e.firing for e in results)


class TestThresholdsAndFingerprints:
    def test_override_ignores_none(self) -> None:
        """Flags left unset (None) keep the configured value; set ones replace it."""
        changed = DEFAULT.override(
            window_min=None, cost_usd_per_hour=5.5, rate_limit_burst=None, breaker_open_min=1
        )
        assert changed == Thresholds(15.0, 5.5, 20, 1)
        assert DEFAULT.override() == DEFAULT
        assert DEFAULT.override(window_min=None) == DEFAULT

    def test_fingerprint_is_stable_across_values(self) -> None:
        """The same rule and labels keep one fingerprint whatever the value and threshold."""
        labels = labels_of({"team": "payments", "project": "web"})
        one = Evaluation("cost_burn", labels, 4.0, 2.0, "USD/h", 15.0, True)
        two = Evaluation("cost_burn", labels, 0.5, 3.0, "USD/h", 30.0, False)
        assert one.fingerprint == two.fingerprint == fingerprint("cost_burn", labels)
        reordered = labels_of({"project": "web", "team": "payments"})
        assert Evaluation("cost_burn", reordered, 1, 2, "USD/h", 15, False).fingerprint == (
            one.fingerprint
        )

    def test_fingerprint_differs_across_labels_and_rules(self) -> None:
        """Another label value, another label set or another rule: another fingerprint."""
        label_sets = [
            labels_of({"team": "payments", "project": "web"}),
            labels_of({"team": "payments", "project": "api"}),
            labels_of({"team": "search", "project": "web"}),
            labels_of({"provider": "gemini"}),
            labels_of({"provider": "openai"}),
            (),
        ]
        prints = {
            Evaluation(rule, labels, 1.0, 1.0, "x", 15.0, False).fingerprint
            for rule in RULES
            for labels in label_sets
        }
        assert len(prints) == len(RULES) * len(label_sets)

    def test_fingerprints_of_a_run_are_stable_between_runs(self) -> None:
        """Evaluating again with other values gives the same fingerprints per label set."""
        data = WindowData()
        spend(data, at(2), 0.75)
        audit(data, at(2), "llm_error", "gemini", status=429)
        before = {e.fingerprint: e.rule for e in evaluate(data, NOW, DEFAULT)}
        spend(data, at(1), 3.0)
        audit(data, at(1), "llm_error", "gemini", status=429)
        after = {e.fingerprint: e.rule for e in evaluate(data, NOW, DEFAULT)}
        assert before == after
