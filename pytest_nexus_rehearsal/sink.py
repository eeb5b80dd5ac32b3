"""A local stand-in for Slack and Teams webhooks: it records posts and answers as they would.

`WebhookSink` serves on 127.0.0.1 one Slack incoming-webhook URL and one Teams Workflows URL.
Every post is checked the way the real service checks it (Block Kit limits, the Workflows
envelope) and answered with the real status and body (shared/reference/slack.md §3,
teams.md §2), so a rehearsal that passes here does not fail on the wire. Faults make it answer
like a broken or busy service: `fail("slack", "no_service")`, `fail("teams", "rate_limited",
times=2)`, or `"hang"` (the request is read and never answered, so the client's timeout fires).

Other processes steer it over HTTP: `POST /_sink/fault`, `POST /_sink/reset`,
`GET /_sink/received`. The sink's URLs and the bodies it records hold no secrets.

One divergence from Teams is deliberate: a body over 28 KB is answered 413 here, while a real
flow answers 202 and then fails the run where nobody sees it; the sink makes that failure visible.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final
from urllib.parse import parse_qs, urlsplit

CHANNELS: Final = ("slack", "teams")
# mode -> (HTTP status, Slack's plain-text error body)
SLACK_FAULTS: Final[dict[str, tuple[int, str]]] = {
    "invalid_payload": (400, "invalid_payload"),
    "no_text": (400, "no_text"),
    "invalid_blocks": (400, "invalid_blocks"),
    "invalid_token": (403, "invalid_token"),
    "action_prohibited": (403, "action_prohibited"),
    "channel_not_found": (404, "channel_not_found"),
    "no_service": (404, "no_service"),
    "channel_is_archived": (410, "channel_is_archived"),
    "team_disabled": (410, "team_disabled"),
    "rate_limited": (429, "rate_limited"),
    "rollup_error": (500, "rollup_error"),
    "unavailable": (503, "service_unavailable"),
}
# mode -> (HTTP status, Power Automate error code, message)
TEAMS_FAULTS: Final[dict[str, tuple[int, str, str]]] = {
    "bad_request": (400, "InvalidRequestContent", "The request content is not valid."),
    "unauthorized": (
        401,
        "DirectApiAuthorizationRequired",
        "The request must be authenticated only by Shared Access scheme.",
    ),
    "not_found": (404, "WorkflowNotFound", "The workflow could not be found."),
    "too_large": (413, "RequestEntityTooLarge", "Request Entity too large."),
    "rate_limited": (429, "TooManyRequests", "Rate limit is exceeded."),
    "server_error": (500, "InternalServerError", "An internal server error occurred."),
    "unavailable": (503, "ServiceUnavailable", "The service is temporarily unavailable."),
}
HANG: Final = "hang"
TEAMS_MAX_BODY_BYTES: Final = 28 * 1024
_MAX_READ_BYTES: Final = 1024 * 1024
_CARD_TYPE: Final = "application/vnd.microsoft.card.adaptive"
_LOOPBACK: Final = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ReceivedPost:
    """One post as the sink saw it. `status` is what it answered (0: never answered, "hang")."""

    channel: str
    body: bytes
    payload: object | None
    status: int
    shape_errors: tuple[str, ...]
    at: float

    def to_json(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "body": self.body.decode("utf-8", "replace"),
            "payload": self.payload,
            "status": self.status,
            "shape_errors": list(self.shape_errors),
            "at": self.at,
        }


@dataclass
class _Fault:
    mode: str
    remaining: int | None
    retry_after_s: int


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _slack_shape(body: bytes) -> tuple[str | None, list[str], object | None]:
    """Slack's own checks: (error token or None, what is wrong, the parsed payload)."""
    try:
        payload: object = json.loads(body)
    except ValueError:
        return "invalid_payload", ["body is not JSON"], None
    if not isinstance(payload, dict):
        return "invalid_payload", ["body is not a JSON object"], payload
    text, blocks = payload.get("text"), payload.get("blocks")
    if not (isinstance(text, str) and text.strip()) and not blocks:
        return "no_text", ["neither text nor blocks"], payload
    errors = _block_errors(blocks) if blocks is not None else []
    return ("invalid_blocks" if errors else None), errors, payload


def _block_errors(blocks: object) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    errors = [f"{len(blocks)} blocks (limit 50)"] if len(blocks) > 50 else []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"blocks[{i}] has no type")
            continue
        if len(str(block.get("block_id", ""))) > 255:
            errors.append(f"blocks[{i}] block_id over 255 chars")
        errors += [f"blocks[{i}] {e}" for e in _one_block_errors(block)]
    return errors


def _text_of(obj: object) -> str | None:
    text = obj.get("text") if isinstance(obj, dict) else None
    return text if isinstance(text, str) else None


def _one_block_errors(block: dict[str, object]) -> list[str]:
    kind, errors = block["type"], []
    if kind == "header":
        header = block.get("text")
        text = _text_of(header)
        if not isinstance(header, dict) or header.get("type") != "plain_text" or text is None:
            errors.append("header text is not plain_text")
        elif len(text) > 150:
            errors.append(f"header text is {len(text)} chars (limit 150)")
    elif kind == "section":
        text, fields = _text_of(block.get("text")), block.get("fields")
        if text is None and not fields:
            errors.append("section has neither text nor fields")
        if text is not None and len(text) > 3000:
            errors.append(f"section text is {len(text)} chars (limit 3000)")
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > 10:
                errors.append("section fields is not a list of at most 10")
            else:
                long = [j for j, f in enumerate(fields) if len(_text_of(f) or "") > 2000]
                errors += [f"section field {j} over 2000 chars" for j in long]
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            errors.append("context elements is not a list of 1 to 10")
    return errors


def _teams_shape(body: bytes) -> tuple[list[str], object | None]:
    """The Workflows trigger's checks of the envelope: (what is wrong, the parsed payload)."""
    try:
        payload: object = json.loads(body)
    except ValueError:
        return ["body is not JSON"], None
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return ['type is not "message"'], payload
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["attachments is not a non-empty list"], payload
    errors = []
    for i, item in enumerate(attachments):
        if not isinstance(item, dict) or item.get("contentType") != _CARD_TYPE:
            errors.append(f"attachments[{i}].contentType is not {_CARD_TYPE}")
            continue
        content = item.get("content")
        if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
            errors.append(f'attachments[{i}].content.type is not "AdaptiveCard"')
    return errors, payload


def _json_answer(status: int, data: object, headers: dict[str, str] | None = None) -> _Answer:
    body = json.dumps(data).encode()
    return _Answer(status, body, "application/json; charset=utf-8", headers or {})


class _SinkState:
    """Faults and records, shared by the handler threads; all access under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: list[ReceivedPost] = []
        self.faults: dict[str, _Fault] = {}
        self.release = threading.Event()  # set: hung requests may end
        self.slack_path = "/services/T0SINK/B0SINK/" + secrets.token_hex(12)
        self.teams_path = f"/workflows/{secrets.token_hex(16)}/triggers/manual/paths/invoke"
        self.teams_sig = secrets.token_urlsafe(24)

    def take_fault(self, channel: str) -> _Fault | None:
        with self.lock:
            fault = self.faults.get(channel)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.faults[channel]
            return fault

    def record(self, post: ReceivedPost) -> None:
        with self.lock:
            self.posts.append(post)

    def clear(self) -> None:
        with self.lock:
            self.posts.clear()
            self.faults.clear()
            release, self.release = self.release, threading.Event()
        release.set()


def _fault_answer(channel: str, fault: _Fault) -> _Answer:
    retry = {"Retry-After": str(fault.retry_after_s)} if fault.mode == "rate_limited" else {}
    if channel == "slack":
        status, token = SLACK_FAULTS[fault.mode]
        return _Answer(status, token.encode(), headers=retry)
    status, code, text = TEAMS_FAULTS[fault.mode]
    return _json_answer(status, {"error": {"code": code, "message": text}}, retry)


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler must never keep the process alive
    state: _SinkState


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    timeout = 30  # idle keep-alive connections end on their own

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a rehearsal's output is its report, not an access log."""

    @property
    def _state(self) -> _SinkState:
        assert isinstance(self.server, _SinkServer)
        return self.server.state

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/_sink/received":
            query = parse_qs(urlsplit(self.path).query)
            channel = query.get("channel", [None])[0]
            with self._state.lock:
                posts = [p.to_json() for p in self._state.posts if channel in (None, p.channel)]
            self._send(_json_answer(200, posts))
        else:
            self._send(_Answer(404, b"not found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_READ_BYTES:
            self.close_connection = True
            self._send(_Answer(413, b"request entity too large"))
            return
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        state = self._state
        if split.path == "/_sink/fault":
            self._send(self._control_fault(body))
        elif split.path == "/_sink/reset":
            state.clear()
            self._send(_json_answer(200, {"ok": True}))
        elif split.path == state.slack_path:
            self._webhook("slack", body, self._slack_answer(body))
        elif split.path == state.teams_path:
            self._webhook("teams", body, self._teams_answer(split.query, body))
        else:
            self._send(_Answer(404, b"not found"))

    def _slack_answer(self, body: bytes) -> tuple[_Answer, list[str], object | None]:
        token, errors, payload = _slack_shape(body)
        if token is not None:
            return _Answer(400, token.encode()), errors, payload
        return _Answer(200, b"ok", "text/html"), errors, payload

    def _teams_answer(self, query: str, body: bytes) -> tuple[_Answer, list[str], object | None]:
        sig = parse_qs(query).get("sig", [None])[0]
        errors, payload = _teams_shape(body)
        if sig != self._state.teams_sig:
            fault = _Fault("unauthorized", None, 0)
            return _fault_answer("teams", fault), ["sig missing or wrong", *errors], payload
        if len(body) > TEAMS_MAX_BODY_BYTES:
            errors = [f"body is {len(body)} bytes (limit {TEAMS_MAX_BODY_BYTES})", *errors]
            return _fault_answer("teams", _Fault("too_large", None, 0)), errors, payload
        if errors:
            return _fault_answer("teams", _Fault("bad_request", None, 0)), errors, payload
        return _Answer(202), errors, payload

    def _webhook(
        self, channel: str, body: bytes, checked: tuple[_Answer, list[str], object | None]
    ) -> None:
        """Record the post and answer: an injected fault first (it is the service's state),
        else the answer of the shape checks."""
        answer, errors, payload = checked
        state = self._state
        fault = state.take_fault(channel)
        if fault is not None and fault.mode == HANG:
            release = state.release
            state.record(ReceivedPost(channel, body, payload, 0, tuple(errors), time.time()))
            release.wait()
            self.close_connection = True  # never answered: the client gave up long ago
            return
        if fault is not None:
            answer = _fault_answer(channel, fault)
        state.record(
            ReceivedPost(channel, body, payload, answer.status, tuple(errors), time.time())
        )
        self._send(answer)

    def _control_fault(self, body: bytes) -> _Answer:
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            times = data.get("times")
            _set_fault(
                self._state,
                str(data.get("channel")),
                str(data.get("mode")),
                times=None if times is None else int(times),
                retry_after_s=int(data.get("retry_after_s", 1)),
            )
        except (ValueError, TypeError) as exc:
            return _json_answer(400, {"ok": False, "error": str(exc)})
        return _json_answer(200, {"ok": True})

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        if answer.body:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


def _set_fault(
    state: _SinkState, channel: str, mode: str, *, times: int | None, retry_after_s: int
) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"channel={channel!r} is invalid: expected slack|teams")
    modes = list(SLACK_FAULTS if channel == "slack" else TEAMS_FAULTS)
    if mode != HANG and mode not in modes:
        raise ValueError(
            f"mode={mode!r} is invalid for {channel}: expected one of " + ", ".join([*modes, HANG])
        )
    if times is not None and times < 1:
        raise ValueError(f"times={times!r} is invalid: expected >= 1 or None (until reset)")
    if retry_after_s < 0:
        raise ValueError(f"retry_after_s={retry_after_s!r} is invalid: expected >= 0")
    with state.lock:
        state.faults[channel] = _Fault(mode, times, retry_after_s)


class WebhookSink:
    """Slack and Teams webhooks on loopback, for rehearsals and tests.

    Args:
        host: a loopback address (the sink is never reachable from other machines).
        port: 0 picks a free port.

    Use as a context manager, or `start()` / `stop()`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in _LOOPBACK and not host.startswith("127."):
            raise ValueError(f"host={host!r} is invalid: the sink binds to loopback only")
        self._host = host
        self._port = port
        self._state = _SinkState()
        self._server: _SinkServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        with self._state.lock:  # a restart after `stop` must hang again when told to
            if self._state.release.is_set():
                self._state.release = threading.Event()
        server = _SinkServer((self._host, self._port), _Handler)
        server.state = self._state
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="nexus-webhook-sink",
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._state.release.set()  # hung requests end
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def slack_url(self) -> str:
        return self.base_url + self._state.slack_path

    @property
    def teams_url(self) -> str:
        return (
            f"{self.base_url}{self._state.teams_path}?api-version=1"
            f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self._state.teams_sig}"
        )

    def received(self, channel: str | None = None) -> list[ReceivedPost]:
        """The posts so far, oldest first; only `channel`'s when given."""
        with self._state.lock:
            return [p for p in self._state.posts if channel in (None, p.channel)]

    def fail(
        self, channel: str, mode: str, *, times: int | None = None, retry_after_s: int = 1
    ) -> None:
        """Answer `channel`'s next `times` posts (None: all, until `reset`) as `mode` does.

        Modes are the keys of `SLACK_FAULTS` / `TEAMS_FAULTS`, or "hang" for either.
        `retry_after_s` is the Retry-After header of "rate_limited".
        """
        _set_fault(self._state, channel, mode, times=times, retry_after_s=retry_after_s)

    def reset(self) -> None:
        """Clear faults and records; hung requests end."""
        self._state.clear()


def serve_sink(host: str, port: int) -> None:
    """Run a sink in the foreground until Ctrl-C, printing its two URLs once (not secrets)."""
    with WebhookSink(host, port) as sink:
        print(f"SLACK_WEBHOOK_URL={sink.slack_url}", flush=True)
        print(f"TEAMS_WEBHOOK_URL={sink.teams_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
