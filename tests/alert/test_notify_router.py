"""The delivering router against the real webhook sink over HTTP: retries, fallback, secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

from nexus_llm.alert.model import Alert, AlertMessage
from nexus_llm.alert.notify import LEGACY_TEAMS_DETAIL, DeliveryResult, NotifyRouter
from nexus_llm.alert.slack import render_slack
from nexus_llm.config import Secret, Settings
from pytest_nexus_rehearsal.sink import WebhookSink
from tests.support import free_port

MOCK_SLACK_URL = "http://127.0.0.1:9/services/T/B/MOCKTOKEN"  # answered by a MockTransport
LEGACY_URL = "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/LEGACYTOKEN/x"

SLACK_PERMANENT = [
    ("invalid_payload", 400),
    ("no_text", 400),
    ("invalid_blocks", 400),
    ("invalid_token", 403),
    ("action_prohibited", 403),
    ("channel_not_found", 404),
    ("no_service", 404),
    ("channel_is_archived", 410),
    ("team_disabled", 410),
]
TEAMS_PERMANENT = [("bad_request", 400), ("unauthorized", 401), ("not_found", 404)]
TEAMS_PERMANENT += [("too_large", 413)]
TRANSIENT = [
    ("slack", "rate_limited", 429),
    ("slack", "rollup_error", 500),
    ("slack", "unavailable", 503),
    ("teams", "rate_limited", 429),
    ("teams", "server_error", 500),
    ("teams", "unavailable", 503),
]


def make_message(count: int = 2) -> AlertMessage:
    alerts = tuple(
        Alert(
            kind="fired",
            rule="cost_burn",
            labels=(("team", f"t{i}"),),
            value=3.0,
            threshold=2.0,
            unit="USD/h",
            window_min=15.0,
            fingerprint=f"{i:016x}",
            since="2026-11-26T14:00:00Z",
        )
        for i in range(count)
    )
    return AlertMessage("test", "2026-11-26T14:05:00Z", "msg-1", alerts)


class Sleeps(list[float]):
    """Records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as running:
        yield running


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


class LoopbackOnly(httpx.HTTPTransport):
    """A real transport that refuses, before any connection, every host but 127.0.0.1."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "127.0.0.1", "a test tried to leave loopback"
        return super().handle_request(request)


RouterFactory = Callable[..., NotifyRouter]


@pytest.fixture
def make_router(sink: WebhookSink, sleeps: Sleeps) -> Iterator[RouterFactory]:
    """Routers pointed at the sink (both channels unless told), closed after the test."""
    made: list[NotifyRouter] = []

    def factory(**kwargs: object) -> NotifyRouter:
        options: dict[str, object] = {
            "slack_url": Secret(sink.slack_url),
            "teams_url": Secret(sink.teams_url),
            "sleep": sleeps,
        }
        options.update(kwargs)
        router = NotifyRouter(**options)  # type: ignore[arg-type]
        made.append(router)
        return router

    yield factory
    for router in made:
        router.close()


def secrets_of(sink: WebhookSink) -> list[str]:
    """The strings that must never be shown: both URLs, their paths, token and sig."""
    slack_token = sink.slack_url.rsplit("/", 1)[1]
    teams = httpx.URL(sink.teams_url)
    sig = teams.params["sig"]
    return [sink.slack_url, sink.teams_url, slack_token, sig, teams.path, "/services/T0SINK"]


class TestSuccessAndOrder:
    def test_slack_first_by_default(self, make_router: RouterFactory, sink: WebhookSink) -> None:
        """Slack takes the message on the first attempt; Teams is not touched."""
        result = make_router().deliver(make_message())
        assert result.delivered
        assert result.channel == "slack"
        (only,) = result.deliveries
        assert (only.ok, only.status, only.attempts, only.permanent) == (True, 200, 1, False)
        assert [p.channel for p in sink.received()] == ["slack"]
        assert sink.received()[0].shape_errors == ()

    def test_prefer_teams(self, make_router: RouterFactory, sink: WebhookSink) -> None:
        """prefer=teams: Teams first, 202 counts as delivered."""
        router = make_router(prefer="teams")
        assert router.channels == ["teams", "slack"]
        result = router.deliver(make_message())
        assert result.channel == "teams"
        assert result.deliveries[0].status == 202
        assert [p.channel for p in sink.received()] == ["teams"]
        assert sink.received()[0].shape_errors == ()

    def test_channels_lists_only_configured(self, make_router: RouterFactory) -> None:
        """A channel without URL is not listed, whatever is preferred."""
        assert make_router(teams_url=None, prefer="teams").channels == ["slack"]
        assert make_router(slack_url=None).channels == ["teams"]
        assert make_router(slack_url=Secret(""), teams_url=None).channels == []

    def test_nothing_configured(self, make_router: RouterFactory) -> None:
        """No channel: no deliveries, not delivered, and a line that says so."""
        result = make_router(slack_url=None, teams_url=None).deliver(make_message())
        assert result == DeliveryResult(())
        assert not result.delivered
        assert result.channel is None
        assert "no channel configured" in result.describe()

    def test_from_settings(self, sink: WebhookSink) -> None:
        """The router reads the two URLs and NOTIFY_PREFER from Settings."""
        settings = Settings.from_env(
            {
                "SLACK_WEBHOOK_URL": sink.slack_url,
                "TEAMS_WEBHOOK_URL": sink.teams_url,
                "NOTIFY_PREFER": "teams",
            }
        )
        with NotifyRouter.from_settings(settings, max_attempts=1) as router:
            assert router.channels == ["teams", "slack"]
            assert router.deliver(make_message()).channel == "teams"

    def test_eighty_alerts_pass_both_shape_checks(
        self, make_router: RouterFactory, sink: WebhookSink
    ) -> None:
        """A large message is accepted by both services' checks."""
        message = make_message(80)
        assert make_router().deliver(message).channel == "slack"
        assert make_router(prefer="teams").deliver(message).channel == "teams"
        assert [p.shape_errors for p in sink.received()] == [(), ()]


class TestRetries:
    def test_429_waits_retry_after_then_succeeds(
        self, make_router: RouterFactory, sink: WebhookSink, sleeps: Sleeps
    ) -> None:
        """Two 429s with Retry-After 3: waits of exactly 3 s each, then delivered."""
        sink.fail("slack", "rate_limited", times=2, retry_after_s=3)
        result = make_router().deliver(make_message())
        assert result.channel == "slack"
        assert result.deliveries[0].attempts == 3
        assert result.deliveries[0].detail == "slack: HTTP 200 — accepted (attempt 3)"
        assert sleeps == [3.0, 3.0]
        assert [p.status for p in sink.received()] == [429, 429, 200]

    def test_teams_429_honours_retry_after(
        self, make_router: RouterFactory, sink: WebhookSink, sleeps: Sleeps
    ) -> None:
        """Teams throttling is retried after its Retry-After too."""
        sink.fail("teams", "rate_limited", times=1, retry_after_s=2)
        result = make_router(prefer="teams").deliver(make_message())
        assert result.channel == "teams"
        assert sleeps == [2.0]

    @pytest.mark.parametrize(("channel", "mode", "status"), TRANSIENT)
    def test_transient_errors_give_up_after_max_attempts(
        self,
        make_router: RouterFactory,
        sink: WebhookSink,
        sleeps: Sleeps,
        channel: str,
        mode: str,
        status: int,
    ) -> None:
        """429 and 5xx are retried up to max_attempts, then reported as transient."""
        sink.fail(channel, mode)
        only = {"slack": "teams_url", "teams": "slack_url"}[channel]
        result = make_router(**{only: None}, max_attempts=3).deliver(make_message())
        (delivery,) = result.deliveries
        assert (delivery.ok, delivery.status, delivery.attempts) == (False, status, 3)
        assert not delivery.permanent
        assert delivery.detail.startswith(f"{channel}: HTTP {status} ")
        assert "gave up after 3 attempts" in delivery.detail
        assert len(sink.received(channel)) == 3
        assert len(sleeps) == 2

    def test_5xx_without_retry_after_backs_off_from_one_second(
        self, make_router: RouterFactory, sink: WebhookSink, sleeps: Sleeps
    ) -> None:
        """No Retry-After: waits of 1 s, then 2 s."""
        sink.fail("slack", "unavailable")
        make_router(teams_url=None, max_attempts=3).deliver(make_message())
        assert sleeps == [1.0, 2.0]

    def test_retry_after_beyond_the_wait_budget_stops(
        self, make_router: RouterFactory, sink: WebhookSink, sleeps: Sleeps
    ) -> None:
        """A Retry-After larger than what is left of max_wait_s ends the tries, transient."""
        sink.fail("slack", "rate_limited", retry_after_s=60)
        result = make_router(teams_url=None, max_wait_s=30).deliver(make_message())
        (delivery,) = result.deliveries
        assert (delivery.attempts, delivery.status, delivery.permanent) == (1, 429, False)
        assert sleeps == []
        assert "wait budget" in delivery.detail

    def test_wait_budget_is_total(
        self, make_router: RouterFactory, sink: WebhookSink, sleeps: Sleeps
    ) -> None:
        """Waits add up: 2 + 2 fits a budget of 5, a third 2 does not."""
        sink.fail("slack", "rate_limited", retry_after_s=2)
        result = make_router(teams_url=None, max_attempts=10, max_wait_s=5).deliver(make_message())
        assert sleeps == [2.0, 2.0]
        assert result.deliveries[0].attempts == 3

    def test_429_without_retry_after_waits_one_second(self, sleeps: Sleeps) -> None:
        """A 429 with no Retry-After header waits the default 1 s."""
        answers = iter([httpx.Response(429, text="rate_limited"), httpx.Response(200, text="ok")])
        transport = httpx.MockTransport(lambda request: next(answers))
        with NotifyRouter(
            slack_url=Secret(MOCK_SLACK_URL),
            teams_url=None,
            sleep=sleeps,
            transport=transport,
        ) as router:
            assert router.deliver(make_message()).delivered
        assert sleeps == [1.0]

    def test_hang_times_out(self, make_router: RouterFactory, sink: WebhookSink) -> None:
        """A webhook that never answers: the client timeout fires, status None, transient."""
        sink.fail("teams", "hang")
        router = make_router(slack_url=None, timeout_s=0.3, max_attempts=2)
        (delivery,) = router.deliver(make_message()).deliveries
        assert (delivery.ok, delivery.status, delivery.attempts) == (False, None, 2)
        assert not delivery.permanent
        assert delivery.detail.startswith("teams: timeout")
        assert [p.status for p in sink.received()] == [0, 0]

    def test_connection_refused_is_transient(self, sleeps: Sleeps) -> None:
        """Nothing listening: a connection error, retried, status None."""
        url = f"http://127.0.0.1:{free_port()}/services/T/B/REFUSEDTOKEN"
        with NotifyRouter(slack_url=Secret(url), teams_url=None, sleep=sleeps) as router:
            (delivery,) = router.deliver(make_message()).deliveries
        assert (delivery.status, delivery.attempts, delivery.permanent) == (None, 3, False)
        assert "ConnectError" in delivery.detail
        assert "REFUSEDTOKEN" not in delivery.detail


class TestPermanent:
    @pytest.mark.parametrize(("mode", "status"), SLACK_PERMANENT)
    def test_slack_permanent_errors_fail_fast(
        self,
        make_router: RouterFactory,
        sink: WebhookSink,
        sleeps: Sleeps,
        mode: str,
        status: int,
    ) -> None:
        """Each Slack configuration error: one attempt, permanent, the error token named."""
        sink.fail("slack", mode)
        (delivery,) = make_router(teams_url=None).deliver(make_message()).deliveries
        assert (delivery.ok, delivery.status, delivery.attempts) == (False, status, 1)
        assert delivery.permanent
        assert delivery.detail.startswith(f"slack: HTTP {status} {mode} — ")
        assert sleeps == []
        assert len(sink.received()) == 1

    @pytest.mark.parametrize(("mode", "status"), TEAMS_PERMANENT)
    def test_teams_permanent_errors_fail_fast(
        self,
        make_router: RouterFactory,
        sink: WebhookSink,
        sleeps: Sleeps,
        mode: str,
        status: int,
    ) -> None:
        """Teams 400/401/404/413: one attempt, permanent."""
        sink.fail("teams", mode)
        (delivery,) = make_router(slack_url=None).deliver(make_message()).deliveries
        assert (delivery.ok, delivery.status, delivery.attempts) == (False, status, 1)
        assert delivery.permanent
        assert delivery.detail.startswith(f"teams: HTTP {status} ")
        assert sleeps == []

    def test_unauthorized_names_the_power_automate_code(
        self, make_router: RouterFactory, sink: WebhookSink
    ) -> None:
        """A 401 says DirectApiAuthorizationRequired, the code Power Automate sends."""
        sink.fail("teams", "unauthorized")
        (delivery,) = make_router(slack_url=None).deliver(make_message()).deliveries
        assert "DirectApiAuthorizationRequired" in delivery.detail

    def test_legacy_teams_url_is_never_posted(self, sleeps: Sleeps) -> None:
        """A retired connector URL fails as permanent with advice; nothing is sent to it."""
        seen: list[str] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request.url.host)
            return httpx.Response(200, text="ok")

        with NotifyRouter(
            slack_url=Secret(MOCK_SLACK_URL),
            teams_url=Secret(LEGACY_URL),
            prefer="teams",
            sleep=sleeps,
            transport=httpx.MockTransport(answer),
        ) as router:
            result = router.deliver(make_message())
        teams, slack = result.deliveries
        assert (teams.channel, teams.ok, teams.permanent, teams.attempts) == (
            "teams",
            False,
            True,
            0,
        )
        assert teams.status is None
        assert teams.detail == LEGACY_TEAMS_DETAIL
        assert "LEGACYTOKEN" not in result.describe()
        assert (slack.channel, slack.ok) == ("slack", True)
        assert seen == ["127.0.0.1"]

    def test_legacy_only_sends_nothing(self) -> None:
        """With only a legacy Teams URL, no request is made at all: not delivered, permanent."""
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(202)

        transport = httpx.MockTransport(answer)
        with NotifyRouter(slack_url=None, teams_url=Secret(LEGACY_URL), transport=transport) as r:
            result = r.deliver(make_message())
        assert not result.delivered
        assert result.deliveries[0].permanent
        assert seen == []

    def test_legacy_teams_with_the_sink(
        self, make_router: RouterFactory, sink: WebhookSink
    ) -> None:
        """Teams preferred but legacy: the sink sees only the Slack post, the fallback."""
        router = make_router(prefer="teams", teams_url=Secret(LEGACY_URL), transport=LoopbackOnly())
        result = router.deliver(make_message())
        assert [d.channel for d in result.deliveries] == ["teams", "slack"]
        assert result.deliveries[0].attempts == 0
        assert [p.channel for p in sink.received()] == ["slack"]

    def test_invalid_url_is_permanent_and_unquoted(self) -> None:
        """A URL httpx cannot parse fails without its text appearing anywhere."""
        secret = "http://127.0.0.1:notaport/services/T/B/BADTOKEN"
        with NotifyRouter(slack_url=Secret(secret), teams_url=None) as router:
            (delivery,) = router.deliver(make_message()).deliveries
        assert delivery.permanent
        assert "BADTOKEN" not in delivery.detail


class TestFallback:
    def test_permanent_primary_falls_back(
        self, make_router: RouterFactory, sink: WebhookSink
    ) -> None:
        """Slack's webhook removed: Teams takes the message; both are reported in order."""
        sink.fail("slack", "no_service")
        result = make_router().deliver(make_message())
        assert [d.channel for d in result.deliveries] == ["slack", "teams"]
        assert result.channel == "teams"
        line = result.describe()
        assert line.startswith("delivered via teams: HTTP 202")
        assert "slack: HTTP 404 no_service" in line

    def test_transient_primary_falls_back_after_its_retries(
        self, make_router: RouterFactory, sink: WebhookSink
    ) -> None:
        """Teams preferred and down: three tries, then Slack."""
        sink.fail("teams", "server_error")
        result = make_router(prefer="teams").deliver(make_message())
        assert [d.attempts for d in result.deliveries] == [3, 1]
        assert result.channel == "slack"

    def test_fallback_only_when_primary_fails(
        self, make_router: RouterFactory, sink: WebhookSink
    ) -> None:
        """A healthy primary: the fallback receives nothing."""
        sink.fail("teams", "server_error")
        assert make_router().deliver(make_message()).channel == "slack"
        assert sink.received("teams") == []

    def test_both_fail(self, make_router: RouterFactory, sink: WebhookSink) -> None:
        """Both channels down: not delivered, one line naming both."""
        sink.fail("slack", "channel_is_archived")
        sink.fail("teams", "not_found")
        result = make_router().deliver(make_message())
        assert not result.delivered
        line = result.describe()
        assert line.startswith("not delivered: slack: HTTP 410 channel_is_archived")
        assert "teams: HTTP 404" in line
        assert "\n" not in line


class TestRequest:
    def test_exact_request(self, sleeps: Sleeps) -> None:
        """One JSON POST with the rendered body and a timeout on every phase."""
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, text="ok")

        message = make_message(3)
        with NotifyRouter(
            slack_url=Secret(MOCK_SLACK_URL),
            teams_url=None,
            timeout_s=0.7,
            transport=httpx.MockTransport(answer),
        ) as router:
            router.deliver(message)
        (request,) = seen
        assert request.method == "POST"
        assert request.headers["content-type"].startswith("application/json")
        assert json.loads(request.content) == render_slack(message)
        assert request.extensions["timeout"] == dict.fromkeys(
            ("connect", "read", "write", "pool"), 0.7
        )

    @pytest.mark.parametrize("kwargs", [{"prefer": "email"}, {"max_attempts": 0}, {"timeout_s": 0}])
    def test_bad_arguments(self, kwargs: dict[str, object]) -> None:
        """Nonsense options are refused at construction."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            NotifyRouter(slack_url=None, teams_url=None, **kwargs)  # type: ignore[arg-type]


class TestSecrets:
    @pytest.mark.parametrize(
        "setup",
        [
            {"slack": "no_service", "teams": "unauthorized"},
            {"slack": "rate_limited", "teams": "server_error"},
            {"slack": "hang", "teams": "hang"},
            {},
        ],
        ids=["permanent", "transient", "hang", "ok"],
    )
    def test_no_url_in_any_output(
        self,
        make_router: RouterFactory,
        sink: WebhookSink,
        caplog: pytest.LogCaptureFixture,
        setup: dict[str, str],
    ) -> None:
        """No detail, describe(), repr or log record (httpx's included) shows a URL part."""
        caplog.set_level(logging.DEBUG)
        for channel, mode in setup.items():
            sink.fail(channel, mode, retry_after_s=1)
        hang = "hang" in setup.values()
        router = make_router(timeout_s=0.3, max_attempts=1 if hang else 2)
        result = router.deliver(make_message())
        shown = [result.describe(), repr(result), repr(router), caplog.text]
        shown += [d.detail for d in result.deliveries]
        shown += [str(record.args) for record in caplog.records]
        for text in shown:
            for secret in secrets_of(sink):
                assert secret not in text
        if not hang:  # httpx logs a line per answered request
            assert any(r.name == "httpx" for r in caplog.records)
