"""Delivering one `AlertMessage` to Slack or Teams: the preferred channel, then the other.

Each channel is tried with bounded retries: 429, 5xx, timeouts and connection errors wait
(Retry-After when given, else 1 s doubling) and try again, within `max_attempts` and a total
wait of `max_wait_s`; errors that only a human can fix (a removed webhook, a bad payload, a
retired Teams connector URL) fail at once. The fallback channel is tried only when the
preferred one fails.

The webhook URLs are credentials. They are revealed only to build the request; every outcome is
described from the status, the service's error token and our own words. httpx exceptions carry
the URL in their text, so none is ever re-raised, logged or kept. Metrics and audit events are
the caller's job: this module only reports what happened.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx

from ..config import NOTIFY_CHANNELS, Secret, Settings
from .model import AlertMessage
from .slack import classify_slack, render_slack
from .teams import classify_teams, is_legacy_teams_url, render_teams

_log = logging.getLogger(__name__)

LEGACY_TEAMS_DETAIL: Final = (
    "teams: TEAMS_WEBHOOK_URL is a retired Office 365 connector URL (webhook.office.com); "
    "create a Workflows webhook (Teams channel → Workflows → 'Post to a channel when a webhook "
    "request is received') and set TEAMS_WEBHOOK_URL to its URL"
)
_RENDER: Final[dict[str, Callable[[AlertMessage], dict[str, object]]]] = {
    "slack": render_slack,
    "teams": render_teams,
}
_CLASSIFY: Final[dict[str, Callable[[int, str], tuple[bool, str]]]] = {
    "slack": classify_slack,
    "teams": classify_teams,
}
_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one channel: how it ended and why, in one line without the URL."""

    channel: str
    ok: bool
    status: int | None  # the last HTTP status; None for a timeout, a connection error, not sent
    attempts: int
    permanent: bool  # retrying later will not help without a fix
    detail: str


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Every channel tried for one message, in the order tried."""

    deliveries: tuple[Delivery, ...]

    @property
    def delivered(self) -> bool:
        return any(d.ok for d in self.deliveries)

    @property
    def channel(self) -> str | None:
        """The channel that took the message, if any."""
        return next((d.channel for d in self.deliveries if d.ok), None)

    def describe(self) -> str:
        """One line for the CLI: where the message went, or why it went nowhere."""
        if not self.deliveries:
            return "not delivered: no channel configured (SLACK_WEBHOOK_URL, TEAMS_WEBHOOK_URL)"
        failed = "; ".join(d.detail for d in self.deliveries if not d.ok)
        taken = next((d for d in self.deliveries if d.ok), None)
        if taken is None:
            return f"not delivered: {failed}"
        head = f"delivered via {taken.detail}"
        return f"{head} (after {failed})" if failed else head


class _WebhookRedactor(logging.Filter):
    """Keeps webhook URLs out of httpx's own INFO line ("HTTP Request: POST <url> …").

    httpx logs the full request URL, which for a webhook is the credential. The filter rewrites
    those records for the URLs registered by live routers; other requests are left alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, bytes], int] = {}

    def register(self, url: httpx.URL) -> None:
        with self._lock:
            key = (url.host, url.raw_path)
            self._keys[key] = self._keys.get(key, 0) + 1

    def unregister(self, url: httpx.URL) -> None:
        with self._lock:
            key = (url.host, url.raw_path)
            left = self._keys.get(key, 0) - 1
            if left > 0:
                self._keys[key] = left
            else:
                self._keys.pop(key, None)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and self._keys:
            record.args = tuple(self._redact(arg) for arg in record.args)
        return True

    def _redact(self, arg: object) -> object:
        if isinstance(arg, httpx.URL) and (arg.host, arg.raw_path) in self._keys:
            return f"{arg.scheme}://{arg.netloc.decode('ascii', 'replace')}/<webhook redacted>"
        return arg


_REDACTOR: Final = _WebhookRedactor()
logging.getLogger("httpx").addFilter(_REDACTOR)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds when it is a plain non-negative number; None otherwise."""
    raw = response.headers.get("retry-after", "").strip()
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context for every router: building one reads the CA bundle (~20 ms), and
    a router has four transports; an SSLContext is safe to share between connections."""
    return httpx.create_ssl_context(trust_env=True)


def _loopback_mounts() -> dict[str, httpx.BaseTransport]:
    # As in nexus_llm.client: HTTP(S)_PROXY must never carry a local sink's traffic (or a
    # webhook URL) to a proxy; every other host still honours the proxy variables.
    return {f"all://{host}": httpx.HTTPTransport(verify=_ssl_context()) for host in _LOOPBACK_HOSTS}


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One try: transient failures carry the wait the service asked for, if any."""

    ok: bool
    status: int | None
    permanent: bool
    reason: str
    retry_after_s: float | None = None


class NotifyRouter:
    """Sends alert messages to the configured webhooks: `prefer` first, the other as fallback.

    Args:
        slack_url, teams_url: the webhook URLs (secrets); None or empty: channel not configured.
        prefer: "slack" or "teams" (NOTIFY_PREFER).
        timeout_s: per request (connect, read, write, pool).
        max_attempts: tries per channel, the first included.
        max_wait_s: total waiting between tries of one channel; a Retry-After larger than what
            is left ends the channel's tries as a transient failure.
        sleep: how to wait (tests pass a recorder).
        transport: an httpx transport (tests); None sends over the network.
    """

    def __init__(
        self,
        *,
        slack_url: Secret | None,
        teams_url: Secret | None,
        prefer: str = "slack",
        timeout_s: float = 10.0,
        max_attempts: int = 3,
        max_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if prefer not in NOTIFY_CHANNELS:
            raise ValueError(f"prefer={prefer!r} is invalid: expected slack|teams")
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts!r} is invalid: expected >= 1")
        if not timeout_s > 0 or not max_wait_s >= 0:
            raise ValueError("timeout_s must be > 0 and max_wait_s >= 0")
        self._urls = {"slack": slack_url, "teams": teams_url}
        self._prefer = prefer
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._max_wait_s = max_wait_s
        self._sleep = sleep
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            verify=_ssl_context(),
            follow_redirects=False,
            mounts=None if transport else _loopback_mounts(),
        )
        self._registered = [u for u in self._parsed_urls() if u is not None]
        for url in self._registered:
            _REDACTOR.register(url)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> NotifyRouter:
        """A router for SLACK_WEBHOOK_URL, TEAMS_WEBHOOK_URL and NOTIFY_PREFER."""
        return cls(
            slack_url=settings.slack_webhook_url,
            teams_url=settings.teams_webhook_url,
            prefer=settings.notify_prefer,
            **kwargs,
        )

    @property
    def channels(self) -> list[str]:
        """The configured channels, the preferred one first."""
        order = sorted(NOTIFY_CHANNELS, key=lambda name: name != self._prefer)
        return [name for name in order if self._urls[name]]

    def deliver(self, message: AlertMessage) -> DeliveryResult:
        """Try each configured channel in order until one takes `message`."""
        deliveries: list[Delivery] = []
        for channel in self.channels:
            delivery = self._deliver_to(channel, message)
            deliveries.append(delivery)
            if delivery.ok:
                break
            _log.warning("alert delivery failed: %s", delivery.detail)
        return DeliveryResult(tuple(deliveries))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._http.close()
        for url in self._registered:
            _REDACTOR.unregister(url)

    def __enter__(self) -> NotifyRouter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NotifyRouter(channels={self.channels!r}, prefer={self._prefer!r})"

    def _parsed_urls(self) -> Iterator[httpx.URL | None]:
        for secret in self._urls.values():
            try:
                yield httpx.URL(secret.reveal()) if secret else None
            except httpx.InvalidURL:
                yield None

    def _deliver_to(self, channel: str, message: AlertMessage) -> Delivery:
        secret = self._urls[channel]
        assert secret is not None
        url = secret.reveal()
        if channel == "teams" and is_legacy_teams_url(url):
            return Delivery(channel, False, None, 0, True, LEGACY_TEAMS_DETAIL)
        body = json.dumps(_RENDER[channel](message), ensure_ascii=False, separators=(",", ":"))
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            result = self._post(channel, url, body.encode())
            status = f"HTTP {result.status} " if result.status is not None else ""
            line = f"{channel}: {status}{result.reason}"
            if result.ok or result.permanent:
                line += f" (attempt {attempt})" if attempt > 1 else ""
                return Delivery(channel, result.ok, result.status, attempt, result.permanent, line)
            if attempt >= self._max_attempts:
                return Delivery(
                    channel,
                    False,
                    result.status,
                    attempt,
                    False,
                    f"{line}; gave up after {attempt} attempts",
                )
            wait = (
                result.retry_after_s
                if result.retry_after_s is not None
                else 1.0 * 2 ** (attempt - 1)
            )
            left = self._max_wait_s - waited
            if wait > left:
                return Delivery(
                    channel,
                    False,
                    result.status,
                    attempt,
                    False,
                    f"{line}; gave up after {attempt} attempts: waiting {wait:g} s more would "
                    f"exceed the {self._max_wait_s:g} s wait budget",
                )
            _log.info("%s; retrying in %g s (attempt %d)", line, wait, attempt + 1)
            self._sleep(wait)
            waited += wait

    def _post(self, channel: str, url: str, body: bytes) -> _Attempt:
        """One request. Never raises an httpx error: their text would carry the URL."""
        try:
            response = self._http.post(
                url, content=body, headers={"content-type": "application/json; charset=utf-8"}
            )
        except httpx.TimeoutException:
            reason = f"timeout — no answer within {self._timeout_s:g} s"
            return _Attempt(False, None, False, reason)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
            return _Attempt(False, None, True, "invalid URL — the webhook URL is not http(s)")
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__} — the connection failed or broke"
            return _Attempt(False, None, False, reason)
        if 200 <= response.status_code < 300:
            return _Attempt(True, response.status_code, False, "— accepted")
        permanent, reason = _CLASSIFY[channel](response.status_code, response.text[:2000])
        return _Attempt(False, response.status_code, permanent, reason, _retry_after(response))
