"""The Slack and Teams message formats: escaping, every size limit, and the error tables."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from nexus_llm.alert.model import Alert, AlertMessage
from nexus_llm.alert.slack import classify_slack, escape_mrkdwn, render_slack, truncate
from nexus_llm.alert.teams import (
    CARD_CONTENT_TYPE,
    MAX_BODY_BYTES,
    classify_teams,
    is_legacy_teams_url,
    render_teams,
)
from pytest_nexus_rehearsal.sink import WebhookSink


def make_alert(i: int = 0, **changes: object) -> Alert:
    fields: dict[str, object] = {
        "kind": "fired",
        "rule": "cost_burn",
        "labels": (("project", f"p{i}"), ("team", "payments")),
        "value": 3.25 + i,
        "threshold": 2.0,
        "unit": "USD/h",
        "window_min": 15.0,
        "fingerprint": f"{i:016x}",
        "since": "2026-11-26T14:00:00Z",
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


def make_message(count: int, **changes: object) -> AlertMessage:
    alerts = tuple(make_alert(i, **changes) for i in range(count))
    return AlertMessage("test", "2026-11-26T14:05:00Z", "msg-0001", alerts)


def mrkdwn_texts(payload: dict[str, object]) -> Iterator[str]:
    """Every mrkdwn string of a Slack payload."""
    blocks = payload["blocks"]
    assert isinstance(blocks, list)
    for block in blocks:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                yield obj["text"]


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as running:
        yield running


def post(url: str, payload: object) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=5) as client:
        return client.post(url, json=payload)


class TestSlackRender:
    def test_escapes_user_strings_in_every_mrkdwn_text(self) -> None:
        """&, < and > from labels, units and times reach Slack only as entities."""
        alert = make_alert(
            labels=(("team", "a&b <!channel>"),), unit="<req>", since="x>y", rule="r<1>"
        )
        payload = render_slack(AlertMessage("e&v", "now", "id<1>", (alert,)))
        texts = list(mrkdwn_texts(payload))
        joined = "\n".join(texts)
        assert "a&amp;b &lt;!channel&gt;" in joined
        assert "&lt;req&gt;" in joined
        assert "x&gt;y" in joined
        assert "e&amp;v" in joined
        assert "id&lt;1&gt;" in joined
        for text in [*texts, str(payload["text"])]:
            assert "<" not in text
            assert ">" not in text.replace("&gt;", "")

    def test_fallback_text_is_the_headline(self) -> None:
        """The top-level text is the message's headline (the notification line)."""
        message = make_message(2)
        assert render_slack(message)["text"] == message.headline()

    def test_one_section_per_alert_with_four_fields(self) -> None:
        """Each alert is a section whose fields are value, threshold, window and since."""
        payload = render_slack(make_message(3))
        blocks = payload["blocks"]
        assert isinstance(blocks, list)
        assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context"]
        fields = blocks[1]["fields"]
        assert [f["text"].split(":*")[0] for f in fields] == [
            "*Value",
            "*Threshold",
            "*Window",
            "*Since",
        ]
        assert "&gt; 2.00 USD/h" in fields[1]["text"]
        context = " ".join(e["text"] for e in blocks[-1]["elements"])
        assert "test" in context
        assert "msg-0001" in context

    def test_eighty_alerts_fit_fifty_blocks_and_summarise_the_rest(self, sink: WebhookSink) -> None:
        """With 80 alerts: 50 blocks, 47 alert sections and "… and 33 more"; Slack accepts it."""
        payload = render_slack(make_message(80))
        blocks = payload["blocks"]
        assert isinstance(blocks, list)
        assert len(blocks) == 50
        assert blocks[-2]["text"]["text"].startswith("*… and 33 more*")
        response = post(sink.slack_url, payload)
        assert (response.status_code, response.text) == (200, "ok")
        assert sink.received()[0].shape_errors == ()

    def test_over_long_texts_are_cut_to_the_limits(self, sink: WebhookSink) -> None:
        """A huge label value and rule name are truncated; the sink finds nothing to reject."""
        huge = "x&" * 4000
        payload = render_slack(make_message(2, labels=(("team", huge),), rule="r" * 400))
        blocks = payload["blocks"]
        assert isinstance(blocks, list)
        assert len(blocks[0]["text"]["text"]) <= 150
        assert blocks[0]["text"]["text"].endswith("…")
        assert all(len(t) <= 3000 for t in mrkdwn_texts(payload))
        response = post(sink.slack_url, payload)
        assert response.status_code == 200
        assert sink.received()[0].shape_errors == ()

    def test_empty_message_is_still_valid(self, sink: WebhookSink) -> None:
        """A message without alerts renders a valid post."""
        assert post(sink.slack_url, render_slack(make_message(0))).status_code == 200

    def test_truncate_never_cuts_an_entity(self) -> None:
        """Cutting inside `&amp;` drops the partial entity rather than showing `&am`."""
        text = truncate(escape_mrkdwn("abcd&efg"), 7)
        assert text == "abcd…"
        assert truncate("short", 10) == "short"


class TestTeamsRender:
    def test_envelope_is_a_message_with_one_adaptive_card(self) -> None:
        """The Workflows envelope: type message, one attachment, AdaptiveCard 1.4 content."""
        payload = render_teams(make_message(2))
        assert payload["type"] == "message"
        attachments = payload["attachments"]
        assert isinstance(attachments, list)
        assert len(attachments) == 1
        assert attachments[0]["contentType"] == CARD_CONTENT_TYPE
        assert attachments[0]["contentUrl"] is None
        card = attachments[0]["content"]
        assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
        kinds = [item["type"] for item in card["body"]]
        assert kinds.count("FactSet") == 2
        facts = {f["title"]: f["value"] for f in card["body"][3]["facts"]}
        assert facts["Threshold"] == "> 2.00 USD/h"
        assert facts["Labels"] == "project=p0 team=payments"

    def test_eighty_alerts_stay_under_the_budget_and_pass_the_sink(self, sink: WebhookSink) -> None:
        """A big message is summarised under 25 KB; the sink accepts it (202, no shape errors)."""
        message = make_message(80, labels=(("team", "t" * 200),))
        payload = render_teams(message)
        size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
        assert size <= MAX_BODY_BYTES
        body = payload["attachments"][0]["content"]["body"]  # type: ignore[index]
        shown = sum(1 for item in body if item["type"] == "FactSet")
        assert shown < 80
        assert body[-1]["text"] == f"… and {80 - shown} more"
        response = post(sink.teams_url, payload)
        assert response.status_code == 202
        assert sink.received("teams")[0].shape_errors == ()

    def test_huge_texts_are_cut(self) -> None:
        """One alert with an enormous label still leaves room in the budget."""
        payload = render_teams(make_message(1, labels=(("team", "y" * 50_000),)))
        assert len(json.dumps(payload)) <= MAX_BODY_BYTES
        body = payload["attachments"][0]["content"]["body"]  # type: ignore[index]
        assert any(item["type"] == "FactSet" for item in body)


class TestLegacyTeamsUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456",
            "https://outlook.office.com/webhook/abc@def/IncomingWebhook/123/456",
            "https://outlook.office365.com/webhook/abc/IncomingWebhook/1/2",
            "HTTPS://Contoso.Webhook.Office.COM/webhookb2/x",
        ],
    )
    def test_retired_connector_urls(self, url: str) -> None:
        """Office 365 connector URLs are recognised, whatever the case."""
        assert is_legacy_teams_url(url)

    @pytest.mark.parametrize(
        "url",
        [
            "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=x",
            "https://default1.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?sig=x",
            "http://127.0.0.1:9/workflows/abc/triggers/manual/paths/invoke?sig=x",
            "https://outlook.office.com/mail/",
            "not a url at all",
        ],
    )
    def test_workflow_and_other_urls(self, url: str) -> None:
        """Workflows URLs (either host) and unrelated URLs are not legacy."""
        assert not is_legacy_teams_url(url)


class TestClassify:
    @pytest.mark.parametrize(
        ("status", "body", "permanent"),
        [
            (400, "invalid_payload", True),
            (400, "no_text", True),
            (400, "invalid_blocks", True),
            (403, "invalid_token", True),
            (403, "action_prohibited", True),
            (404, "channel_not_found", True),
            (404, "no_service", True),
            (404, "no_team", True),
            (410, "channel_is_archived", True),
            (410, "team_disabled", True),
            (500, "rollup_error", False),
            (429, "", False),
            (503, "", False),
            (403, "", True),
            (500, "no_service", True),  # the body decides first
        ],
    )
    def test_slack_table(self, status: int, body: str, permanent: bool) -> None:
        """Slack errors: the body string decides, else the status."""
        got, reason = classify_slack(status, body)
        assert got is permanent
        if body:
            assert reason.startswith(f"{body} — ")

    def test_slack_free_text_is_not_quoted(self) -> None:
        """A body that is not an error token never reaches the reason."""
        _, reason = classify_slack(
            502, "<html>proxy error for https://x/services/T/B/SECRET</html>"
        )
        assert "SECRET" not in reason
        assert "html" not in reason

    @pytest.mark.parametrize(
        ("status", "permanent"),
        [
            (400, True),
            (401, True),
            (403, True),
            (404, True),
            (413, True),
            (429, False),
            (500, False),
            (502, False),
            (503, False),
            (408, False),
        ],
    )
    def test_teams_table(self, status: int, permanent: bool) -> None:
        """Teams errors are judged by status."""
        assert classify_teams(status, "")[0] is permanent

    def test_teams_quotes_only_the_error_code(self) -> None:
        """The DirectApiAuthorizationRequired code is quoted, its message is not."""
        body = json.dumps(
            {"error": {"code": "DirectApiAuthorizationRequired", "message": "sig=SECRET"}}
        )
        permanent, reason = classify_teams(401, body)
        assert permanent
        assert reason.startswith("DirectApiAuthorizationRequired — ")
        assert "SECRET" not in reason
