"""The Slack message format (Block Kit) and the meaning of Slack's webhook answers.

Pure functions, no I/O: `render_slack` turns an `AlertMessage` into the JSON body of an incoming
webhook post, within every Block Kit limit (shared/reference/slack.md §2) so that Slack never
answers `invalid_blocks`; `classify_slack` reads an error answer (§3) and says whether retrying
later can help.
"""

from __future__ import annotations

import re
from typing import Final

from .model import Alert, AlertMessage, format_value

MAX_BLOCKS: Final = 50
MAX_HEADER_CHARS: Final = 150
MAX_SECTION_CHARS: Final = 3000
MAX_FIELDS: Final = 10
MAX_FIELD_CHARS: Final = 2000
MAX_CONTEXT_ELEMENTS: Final = 10
# Slack splits top-level text near 40,000 chars; a notification line needs far less.
MAX_FALLBACK_CHARS: Final = 1000
# One label line per alert: long label sets are cut so the section keeps its fields readable.
_MAX_LABEL_CHARS: Final = 1000

_ELLIPSIS: Final = "…"


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters mrkdwn treats as markup (`&`, `<`, `>`).

    `<` would otherwise open a link or a mention (`<!channel>`) taken from a label value.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut.

    An escaped entity (`&amp;`) is never cut in half: a dangling `&am` would show as garbage.
    """
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + _ELLIPSIS


def _mrkdwn(text: str) -> dict[str, object]:
    return {"type": "mrkdwn", "text": text}


def _headline_header(message: AlertMessage) -> dict[str, object]:
    # plain_text is shown as is: no escaping, only the length limit.
    text = truncate(message.headline(), MAX_HEADER_CHARS)
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


_KIND_MARK: Final = {"fired": "FIRING", "repeated": "STILL FIRING", "resolved": "RESOLVED"}


def _alert_section(alert: Alert) -> dict[str, object]:
    """One alert: what and where in the text, the numbers as two-column fields."""
    where = " ".join(f"{k}={v}" for k, v in alert.labels) or "all"
    title = f"*[{_KIND_MARK[alert.kind]}] {escape_mrkdwn(alert.title)}*"
    labels = truncate(escape_mrkdwn(where), _MAX_LABEL_CHARS)
    fields = [
        ("Value", format_value(alert.value, alert.unit)),
        ("Threshold", f"{alert.comparison} {format_value(alert.threshold, alert.unit)}"),
        ("Window", f"{alert.window_min:g} min"),
        ("Since", alert.since),
    ]
    return {
        "type": "section",
        "text": _mrkdwn(truncate(f"{title}\n{labels}", MAX_SECTION_CHARS)),
        "fields": [
            _mrkdwn(truncate(f"*{name}:*\n{escape_mrkdwn(value)}", MAX_FIELD_CHARS))
            for name, value in fields[:MAX_FIELDS]
        ],
    }


def _rest_section(rest: tuple[Alert, ...]) -> dict[str, object]:
    """The alerts that did not fit, as one section: a count, then as many summaries as fit."""
    lines = [f"*… and {len(rest)} more*"]
    lines += [f"• {escape_mrkdwn(alert.summary())}" for alert in rest]
    return {"type": "section", "text": _mrkdwn(_join_within("\n", lines, MAX_SECTION_CHARS))}


def _join_within(sep: str, lines: list[str], limit: int) -> str:
    """Whole lines joined while they fit; the first line is always kept (cut if need be)."""
    text = truncate(lines[0], limit)
    for line in lines[1:]:
        if len(text) + len(sep) + len(line) > limit:
            break
        text += sep + line
    return text


def _context(message: AlertMessage) -> dict[str, object]:
    elements = [
        _mrkdwn(truncate(f"env: *{escape_mrkdwn(message.env)}*", MAX_FIELD_CHARS)),
        _mrkdwn(truncate(f"message {escape_mrkdwn(message.message_id)}", MAX_FIELD_CHARS)),
        _mrkdwn(truncate(f"created {escape_mrkdwn(message.created_at)}", MAX_FIELD_CHARS)),
    ]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def render_slack(message: AlertMessage) -> dict[str, object]:
    """The incoming-webhook body for `message`: fallback `text` plus Block Kit blocks.

    Layout: a header, one section per alert, a context line (env, message id). With more alerts
    than 50 blocks can hold, the last section before the context summarises the rest as
    "… and N more" so the message stays valid instead of being rejected whole.
    """
    blocks: list[dict[str, object]] = [_headline_header(message)]
    room = MAX_BLOCKS - 2  # the header and the context
    alerts = message.alerts
    if not alerts:
        blocks.append({"type": "section", "text": _mrkdwn("No alerts.")})
    elif len(alerts) <= room:
        blocks += [_alert_section(alert) for alert in alerts]
    else:
        shown = room - 1  # one block is the summary of the rest
        blocks += [_alert_section(alert) for alert in alerts[:shown]]
        blocks.append(_rest_section(alerts[shown:]))
    blocks.append(_context(message))
    return {
        "text": truncate(escape_mrkdwn(message.headline()), MAX_FALLBACK_CHARS),
        "blocks": blocks,
    }


# Error bodies from the reference table: permanent or not, and what to do about it.
_SLACK_ERRORS: Final[dict[str, tuple[bool, str]]] = {
    "invalid_payload": (True, "the body could not be parsed or is structurally invalid"),
    "no_text": (True, "the message had neither text nor blocks"),
    "invalid_blocks": (True, "a block breaks Block Kit's schema or limits"),
    "invalid_blocks_format": (True, "a block breaks Block Kit's schema or limits"),
    "too_many_attachments": (True, "more than 100 attachments"),
    "user_not_found": (True, "the target user does not exist"),
    "no_service_id": (True, "the webhook URL is malformed"),
    "action_prohibited": (True, "a workspace admin restriction forbids posting here"),
    "posting_to_general_channel_denied": (True, "admins restricted posting to #general"),
    "invalid_token": (True, "the webhook token is invalid; create a new webhook"),
    "channel_not_found": (True, "the webhook's channel no longer exists"),
    "no_service": (True, "the webhook was removed or the URL is wrong"),
    "no_team": (True, "the workspace is missing or invalid"),
    "channel_is_archived": (True, "the webhook's channel is archived"),
    "team_disabled": (True, "the workspace is disabled"),
    "rollup_error": (False, "an unexpected Slack-side failure; retry later"),
}

# Only a short error token from the body is ever quoted: never free text of unknown origin.
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def classify_slack(status: int, body: str) -> tuple[bool, str]:
    """Whether an error answer is permanent, and a one-line reason naming the error.

    The body string decides first (Slack's status codes for the same error have changed over
    time); an unknown body falls back to the status: 429, 408 and 5xx are transient, any other
    failure needs someone to fix the webhook or the payload.
    """
    token = body.strip()
    known = _SLACK_ERRORS.get(token)
    if known is not None:
        permanent, why = known
        return permanent, f"{token} — {why}"
    name = f"{token} " if _TOKEN.fullmatch(token) else ""
    if status == 429:
        return False, f"{name}— rate limited; retry after the Retry-After delay"
    if status == 408 or status >= 500:
        return False, f"{name}— a transient Slack-side failure; retry later"
    if 300 <= status < 400:
        return True, f"{name}— an unexpected redirect; check the webhook URL"
    return True, f"{name}— Slack refused the message; check the webhook and the payload"
