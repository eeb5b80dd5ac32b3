"""The webhook sink on its own: answers like Slack and Teams, shape checks, faults, control API."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from pytest_nexus_rehearsal.sink import SLACK_FAULTS, TEAMS_FAULTS, WebhookSink
from tests.support import clean_environ

CARD = "application/vnd.microsoft.card.adaptive"


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


def teams_payload(**changes: object) -> dict[str, object]:
    card = {"type": "AdaptiveCard", "version": "1.4", "body": []}
    attachment = {"contentType": CARD, "contentUrl": None, "content": card}
    payload: dict[str, object] = {"type": "message", "attachments": [attachment]}
    payload.update(changes)
    return payload


def header(text: str, kind: str = "plain_text") -> dict[str, object]:
    return {"type": "header", "text": {"type": kind, "text": text}}


def section(text: str = "x", fields: int = 0, field_len: int = 1) -> dict[str, object]:
    block: dict[str, object] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if fields:
        block["fields"] = [{"type": "mrkdwn", "text": "f" * field_len}] * fields
    return block


class TestUnfaulted:
    def test_slack_answers_ok(self, sink: WebhookSink, http: httpx.Client) -> None:
        """Slack: 200, body `ok`, text/html; the post is recorded with its payload."""
        response = http.post(sink.slack_url, json={"text": "hi"})
        assert (response.status_code, response.text) == (200, "ok")
        assert response.headers["content-type"] == "text/html"
        (post,) = sink.received()
        assert (post.channel, post.status, post.payload, post.shape_errors) == (
            "slack",
            200,
            {"text": "hi"},
            (),
        )

    def test_teams_answers_202_empty(self, sink: WebhookSink, http: httpx.Client) -> None:
        """Teams: 202 with an empty body."""
        response = http.post(sink.teams_url, json=teams_payload())
        assert (response.status_code, response.content) == (202, b"")
        assert sink.received("teams")[0].status == 202
        assert sink.received("slack") == []

    def test_urls_have_the_real_shapes(self, sink: WebhookSink) -> None:
        """Slack /services/T/B/token; Teams a Workflows trigger with api-version, sp, sv, sig."""
        assert sink.slack_url.startswith(f"{sink.base_url}/services/T0SINK/B0SINK/")
        teams = httpx.URL(sink.teams_url)
        assert teams.path.startswith("/workflows/")
        assert teams.path.endswith("/triggers/manual/paths/invoke")
        assert set(teams.params) == {"api-version", "sp", "sv", "sig"}
        assert teams.params["sp"] == "/triggers/manual/run"
        assert WebhookSink().slack_url != sink.slack_url  # a fresh token per sink

    def test_unknown_path_is_404(self, sink: WebhookSink, http: httpx.Client) -> None:
        """A path that is neither webhook is 404 and is not recorded."""
        assert (
            http.post(f"{sink.base_url}/services/T/B/wrong", json={"text": "x"}).status_code == 404
        )
        assert http.get(f"{sink.base_url}/").status_code == 404
        assert sink.received() == []

    def test_only_loopback(self) -> None:
        """The sink refuses to bind anywhere but loopback."""
        with pytest.raises(ValueError, match="loopback"):
            WebhookSink(host="0.0.0.0")  # noqa: S104 - refused, never bound


class TestSlackShape:
    @pytest.mark.parametrize(
        ("body", "error"),
        [
            (b"{not json", "invalid_payload"),
            (b"[1, 2]", "invalid_payload"),
            (json.dumps({}).encode(), "no_text"),
            (json.dumps({"text": "  "}).encode(), "no_text"),
            (json.dumps({"blocks": [section()] * 51}).encode(), "invalid_blocks"),
            (json.dumps({"blocks": [header("h" * 151)]}).encode(), "invalid_blocks"),
            (json.dumps({"blocks": [header("h", "mrkdwn")]}).encode(), "invalid_blocks"),
            (json.dumps({"blocks": [section("s" * 3001)]}).encode(), "invalid_blocks"),
            (json.dumps({"blocks": [section(fields=11)]}).encode(), "invalid_blocks"),
            (
                json.dumps({"blocks": [section(fields=2, field_len=2001)]}).encode(),
                "invalid_blocks",
            ),
            (
                json.dumps(
                    {"blocks": [{"type": "context", "elements": [{"type": "mrkdwn"}] * 11}]}
                ).encode(),
                "invalid_blocks",
            ),
        ],
        ids=[
            "bad-json",
            "not-object",
            "empty",
            "blank-text",
            "51-blocks",
            "long-header",
            "mrkdwn-header",
            "long-section",
            "11-fields",
            "long-field",
            "11-context-elements",
        ],
    )
    def test_rejected_like_slack(
        self, sink: WebhookSink, http: httpx.Client, body: bytes, error: str
    ) -> None:
        """Each violation: 400 with Slack's error token, and a recorded shape error."""
        response = http.post(sink.slack_url, content=body)
        assert (response.status_code, response.text) == (400, error)
        assert sink.received()[0].shape_errors != ()

    def test_limits_exactly_are_fine(self, sink: WebhookSink, http: httpx.Client) -> None:
        """50 blocks, a 150-char header, 3000-char text and 10 fields of 2000 pass."""
        blocks = [header("h" * 150), section("s" * 3000, fields=10, field_len=2000)]
        blocks += [section()] * 48
        response = http.post(sink.slack_url, json={"text": "t", "blocks": blocks})
        assert response.status_code == 200
        assert sink.received()[0].shape_errors == ()


class TestTeamsShape:
    def test_missing_sig_is_401(self, sink: WebhookSink, http: httpx.Client) -> None:
        """No sig: 401 with Power Automate's DirectApiAuthorizationRequired body."""
        url = httpx.URL(sink.teams_url)
        response = http.post(url.copy_remove_param("sig"), json=teams_payload())
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "DirectApiAuthorizationRequired"

    def test_wrong_sig_is_401(self, sink: WebhookSink, http: httpx.Client) -> None:
        """A sig other than the sink's own is refused the same way."""
        url = httpx.URL(sink.teams_url).copy_set_param("sig", "forged")
        assert http.post(url, json=teams_payload()).status_code == 401

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            json.dumps(teams_payload(type="card")).encode(),
            json.dumps(teams_payload(attachments=[])).encode(),
            json.dumps(teams_payload(attachments={"a": 1})).encode(),
            json.dumps(teams_payload(attachments=[{"contentType": "text/html"}])).encode(),
            json.dumps(
                teams_payload(attachments=[{"contentType": CARD, "content": {"type": "Hero"}}])
            ).encode(),
        ],
        ids=["bad-json", "type", "no-attachments", "attachments-object", "content-type", "card"],
    )
    def test_bad_envelope_is_400(self, sink: WebhookSink, http: httpx.Client, body: bytes) -> None:
        """Anything but a message envelope with Adaptive Cards: 400, shape error recorded."""
        assert http.post(sink.teams_url, content=body).status_code == 400
        assert sink.received()[0].shape_errors != ()

    def test_over_28_kb_is_413(self, sink: WebhookSink, http: httpx.Client) -> None:
        """A body over 28 KB: 413 (a real flow would accept it and fail the run)."""
        payload = teams_payload()
        payload["padding"] = "p" * (28 * 1024)
        assert http.post(sink.teams_url, json=payload).status_code == 413


class TestFaults:
    @pytest.mark.parametrize(("mode", "answer"), sorted(SLACK_FAULTS.items()))
    def test_slack_modes(
        self, sink: WebhookSink, http: httpx.Client, mode: str, answer: tuple[int, str]
    ) -> None:
        """Each Slack fault answers its status and plain-text error token."""
        sink.fail("slack", mode, retry_after_s=7)
        response = http.post(sink.slack_url, json={"text": "x"})
        assert (response.status_code, response.text) == answer
        assert ("retry-after" in response.headers) is (mode == "rate_limited")
        if mode == "rate_limited":
            assert response.headers["retry-after"] == "7"
        assert sink.received()[0].status == answer[0]

    @pytest.mark.parametrize(("mode", "answer"), sorted(TEAMS_FAULTS.items()))
    def test_teams_modes(
        self, sink: WebhookSink, http: httpx.Client, mode: str, answer: tuple[int, str, str]
    ) -> None:
        """Each Teams fault answers its status with a Power Automate style error body."""
        sink.fail("teams", mode)
        response = http.post(sink.teams_url, json=teams_payload())
        assert response.status_code == answer[0]
        assert response.json()["error"]["code"] == answer[1]
        if mode == "rate_limited":
            assert response.headers["retry-after"] == "1"

    def test_times_then_normal(self, sink: WebhookSink, http: httpx.Client) -> None:
        """times=2: two faulted answers, then the normal one."""
        sink.fail("slack", "unavailable", times=2)
        codes = [http.post(sink.slack_url, json={"text": "x"}).status_code for _ in range(3)]
        assert codes == [503, 503, 200]

    def test_until_reset(self, sink: WebhookSink, http: httpx.Client) -> None:
        """times=None lasts until reset, which also clears the records."""
        sink.fail("teams", "not_found")
        assert http.post(sink.teams_url, json=teams_payload()).status_code == 404
        assert http.post(sink.teams_url, json=teams_payload()).status_code == 404
        sink.reset()
        assert sink.received() == []
        assert http.post(sink.teams_url, json=teams_payload()).status_code == 202

    def test_faults_are_per_channel(self, sink: WebhookSink, http: httpx.Client) -> None:
        """A Slack fault leaves Teams answering normally."""
        sink.fail("slack", "no_service")
        assert http.post(sink.teams_url, json=teams_payload()).status_code == 202

    @pytest.mark.parametrize(
        ("channel", "mode", "times"),
        [
            ("email", "hang", None),
            ("slack", "not_found", None),
            ("teams", "no_service", None),
            ("slack", "hang", 0),
        ],
    )
    def test_bad_fault_is_refused(
        self, sink: WebhookSink, channel: str, mode: str, times: int | None
    ) -> None:
        """Unknown channels, modes of the other service and times < 1 raise ValueError."""
        with pytest.raises(ValueError, match="invalid"):
            sink.fail(channel, mode, times=times)

    def test_hang_never_answers(self, sink: WebhookSink) -> None:
        """hang: the request is recorded (status 0) and the client's timeout fires."""
        sink.fail("slack", "hang")
        with httpx.Client(trust_env=False, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
            client.post(sink.slack_url, json={"text": "x"})
        assert [p.status for p in sink.received()] == [0]

    def test_hang_ends_with_reset(self, sink: WebhookSink, http: httpx.Client) -> None:
        """After reset the sink answers again."""
        sink.fail("teams", "hang", times=1)
        with httpx.Client(trust_env=False, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
            client.post(sink.teams_url, json=teams_payload())
        sink.reset()
        assert http.post(sink.teams_url, json=teams_payload()).status_code == 202

    def test_restart_keeps_the_urls_and_can_hang_again(self, http: httpx.Client) -> None:
        """After stop and start the same URLs answer, and "hang" hangs again."""
        sink = WebhookSink()
        with sink:
            url = sink.slack_url
        with sink:
            assert sink.slack_url == url
            assert http.post(url, json={"text": "x"}).status_code == 200
            sink.fail("slack", "hang")
            with (
                httpx.Client(trust_env=False, timeout=0.2) as client,
                pytest.raises(httpx.ReadTimeout),
            ):
                client.post(url, json={"text": "x"})

    def test_hung_request_does_not_keep_the_process_alive(self) -> None:
        """A process with a request hanging in the sink still exits (daemon threads)."""
        code = textwrap.dedent(
            """
            import threading, httpx
            from pytest_nexus_rehearsal.sink import WebhookSink
            sink = WebhookSink(); sink.start(); sink.fail("slack", "hang")
            seen = threading.Event()
            def post():
                with httpx.Client(trust_env=False, timeout=30) as client:
                    try:
                        client.post(sink.slack_url, json={"text": "x"})
                    except httpx.HTTPError:
                        pass
            threading.Thread(target=post, daemon=True).start()
            while not sink.received():
                seen.wait(0.01)
            print("hung", flush=True)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=clean_environ(),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert (done.returncode, done.stdout.strip()) == (0, "hung"), done.stderr


class TestControl:
    def test_fault_reset_and_received_over_http(
        self, sink: WebhookSink, http: httpx.Client
    ) -> None:
        """Another process can set a fault, read the posts and reset, all over HTTP."""
        fault = {"channel": "slack", "mode": "rate_limited", "times": 1, "retry_after_s": 4}
        assert http.post(f"{sink.base_url}/_sink/fault", json=fault).json() == {"ok": True}
        response = http.post(sink.slack_url, json={"text": "a&b"})
        assert (response.status_code, response.headers["retry-after"]) == (429, "4")
        http.post(sink.teams_url, json=teams_payload())
        posts = http.get(f"{sink.base_url}/_sink/received").json()
        assert [(p["channel"], p["status"]) for p in posts] == [("slack", 429), ("teams", 202)]
        assert json.loads(posts[0]["body"]) == {"text": "a&b"}
        assert posts[0]["payload"] == {"text": "a&b"}
        only = http.get(f"{sink.base_url}/_sink/received", params={"channel": "teams"}).json()
        assert [p["channel"] for p in only] == ["teams"]
        assert http.post(f"{sink.base_url}/_sink/reset").status_code == 200
        assert http.get(f"{sink.base_url}/_sink/received").json() == []

    def test_bad_fault_over_http_is_400(self, sink: WebhookSink, http: httpx.Client) -> None:
        """A wrong fault request is answered 400 with the reason."""
        response = http.post(f"{sink.base_url}/_sink/fault", json={"channel": "slack", "mode": "x"})
        assert response.status_code == 400
        assert "mode" in response.json()["error"]
        assert http.post(f"{sink.base_url}/_sink/fault", content=b"[]").status_code == 400

    def test_serve_sink_prints_urls_and_stops_on_ctrl_c(self) -> None:
        """serve_sink prints both URLs once, serves them, and ends cleanly on SIGINT."""
        code = "from pytest_nexus_rehearsal.sink import serve_sink; serve_sink('127.0.0.1', 0)"
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            slack = proc.stdout.readline().strip()
            teams = proc.stdout.readline().strip()
            assert slack.startswith("SLACK_WEBHOOK_URL=http://127.0.0.1:")
            assert teams.startswith("TEAMS_WEBHOOK_URL=http://127.0.0.1:")
            with httpx.Client(trust_env=False, timeout=5) as client:
                url = slack.split("=", 1)[1]
                assert client.post(url, json={"text": "x"}).text == "ok"
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out == ""
