"""The Microsoft Teams message format (a Workflows webhook post) and the meaning of its answers.

Pure functions, no I/O. Teams webhooks now go through Power Automate Workflows
(shared/reference/teams.md §2): the body is a `message` envelope carrying one Adaptive Card 1.4.
The flow answers 202 before it renders anything, so a card that is too large is never reported
back: `render_teams` keeps the body under a budget and summarises the alerts that do not fit.
The retired Office 365 connector URLs are recognised by `is_legacy_teams_url`, so that a stale
TEAMS_WEBHOOK_URL is reported as a configuration problem instead of being retried.
"""

from __future__ import annotations

import json
import re
from typing import Final

import httpx

from .model import Alert, AlertMessage, format_value
from .slack import truncate

CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
# The Workflows action fails near 28 KB; stay clear of it (some clients budget 21 KB).
MAX_BODY_BYTES: Final = 25_000
# Any single text is cut to this, so one alert can never take the whole budget.
_MAX_TEXT_CHARS: Final = 1000

_KIND_MARK: Final = {"fired": "FIRING", "repeated": "STILL FIRING", "resolved": "RESOLVED"}


def _size(value: object) -> int:
    # ASCII-escaped JSON is never smaller than the UTF-8 the router sends: a safe measure.
    return len(json.dumps(value, separators=(",", ":")))


def _text(text: str, **style: object) -> dict[str, object]:
    return {"type": "TextBlock", "text": truncate(text, _MAX_TEXT_CHARS), "wrap": True, **style}


def _alert_items(alert: Alert) -> list[dict[str, object]]:
    """One alert: a bold title line, then its numbers as a FactSet."""
    where = " ".join(f"{k}={v}" for k, v in alert.labels) or "all"
    facts = [
        ("Labels", where),
        ("Value", format_value(alert.value, alert.unit)),
        ("Threshold", f"{alert.comparison} {format_value(alert.threshold, alert.unit)}"),
        ("Window", f"{alert.window_min:g} min"),
        ("Since", alert.since),
    ]
    return [
        _text(
            f"[{_KIND_MARK[alert.kind]}] {alert.title}",
            weight="Bolder",
            separator=True,
            spacing="Medium",
        ),
        {
            "type": "FactSet",
            "facts": [
                {"title": name, "value": truncate(value, _MAX_TEXT_CHARS)} for name, value in facts
            ],
        },
    ]


def _envelope(body: list[dict[str, object]]) -> dict[str, object]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def _rest_text(count: int) -> dict[str, object]:
    return _text(f"… and {count} more", isSubtle=True, separator=True)


def render_teams(message: AlertMessage) -> dict[str, object]:
    """The Workflows webhook body for `message`: headline, context line, then per alert a title
    and a FactSet, while the body stays under `MAX_BODY_BYTES`; the rest become "… and N more".
    """
    body: list[dict[str, object]] = [
        _text(message.headline(), weight="Bolder", size="Large"),
        _text(
            f"env {message.env} · message {message.message_id} · created {message.created_at}",
            isSubtle=True,
            size="Small",
            spacing="None",
        ),
    ]
    if not message.alerts:
        body.append(_text("No alerts."))
        return _envelope(body)
    # Room kept for the summary line, measured at its longest (every alert left out).
    used = _size(_envelope(body)) + _size(_rest_text(len(message.alerts))) + 1
    for index, alert in enumerate(message.alerts):
        items = _alert_items(alert)
        cost = sum(_size(item) + 1 for item in items)  # +1: the comma between array items
        if used + cost > MAX_BODY_BYTES:
            body.append(_rest_text(len(message.alerts) - index))
            break
        body += items
        used += cost
    return _envelope(body)


_LEGACY_OUTLOOK_HOSTS: Final = ("outlook.office.com", "outlook.office365.com")


def is_legacy_teams_url(url: str) -> bool:
    """Whether `url` is a retired Office 365 connector webhook (dead since 2026).

    Those are `<tenant>.webhook.office.com/webhookb2/…` and `outlook.office[365].com/webhook/…`;
    a Workflows URL (`…/workflows/…/triggers/manual/paths/invoke?…&sig=…`) is not.
    """
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        return False
    host = parsed.host.lower().rstrip(".")
    path = parsed.path.lower()
    if host == "webhook.office.com" or host.endswith(".webhook.office.com"):
        return True
    return host in _LEGACY_OUTLOOK_HOSTS and path.startswith("/webhook")


_TEAMS_ERRORS: Final[dict[int, tuple[bool, str]]] = {
    400: (True, "the flow rejected the body (not JSON or not the expected shape)"),
    401: (True, "the sig is missing or invalid, or the flow requires a signed-in user"),
    403: (True, "the flow refused the request"),
    404: (True, "the flow was deleted or the URL is wrong"),
    413: (True, "the card is too large for the flow (about 28 KB)"),
    429: (False, "throttled by Power Platform; retry after the Retry-After delay"),
}

_CODE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _error_code(body: str) -> str | None:
    """The `error.code` of a Power Automate error body, when it is a plain identifier."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and _CODE.fullmatch(code) else None


def classify_teams(status: int, body: str) -> tuple[bool, str]:
    """Whether a non-2xx answer of a Workflows webhook is permanent, and a one-line reason.

    Only the status is authoritative (the flow's error bodies are not documented); the
    `error.code` is quoted when it is a plain identifier such as DirectApiAuthorizationRequired.
    """
    code = _error_code(body)
    name = f"{code} " if code else ""
    known = _TEAMS_ERRORS.get(status)
    if known is not None:
        permanent, why = known
        return permanent, f"{name}— {why}"
    if status == 408 or status >= 500:
        return False, f"{name}— a transient Power Platform failure; retry later"
    if 300 <= status < 400:
        return True, f"{name}— an unexpected redirect; check the webhook URL"
    return True, f"{name}— the flow refused the message; check the webhook"
