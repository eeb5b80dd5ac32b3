"""The sync senders: which one `Client` picks, and how urllib3 failures are typed."""

from __future__ import annotations

import http.client
import socket

import httpx
import pytest

from nexus_llm import sync_transports
from nexus_llm.errors import BadRequestError, ProviderConnectionError, ProviderTimeoutError
from nexus_llm.sync_transports import (
    HttpxSyncSender,
    SyncSender,
    Urllib3Sender,
    choose_sync_backend,
    make_sync_sender,
    urllib3_error,
)
from nexus_llm.types import HttpReply
from tests.raw_http_server import RawServer
from tests.support import SENDER_SECRET, send_effect, without_proxy_env

urllib3 = pytest.importorskip("urllib3")
u3 = urllib3.exceptions

SECRET = SENDER_SECRET
_send = send_effect


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxy_env(monkeypatch)


class TestChooseSyncBackend:
    def test_auto_prefers_urllib3(self) -> None:
        """With urllib3 installed, no transport and no proxy, auto sends over urllib3."""
        assert choose_sync_backend("auto", transport=None) == "urllib3"
        assert isinstance(make_sync_sender("auto", timeout_s=1, transport=None), Urllib3Sender)

    def test_an_httpx_transport_means_httpx(self) -> None:
        """An injected httpx transport (tests' MockTransport) keeps the httpx sender."""
        mock = httpx.MockTransport(lambda request: httpx.Response(200))
        assert choose_sync_backend("auto", transport=mock) == "httpx"
        assert isinstance(make_sync_sender("auto", timeout_s=1, transport=mock), HttpxSyncSender)

    def test_proxy_variables_mean_httpx(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Proxy variables set: auto uses httpx, which honours them for non-loopback hosts."""
        monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
        assert choose_sync_backend("auto", transport=None) == "httpx"

    def test_without_urllib3_auto_falls_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When urllib3 is not importable, auto uses httpx and a forced urllib3 says why."""
        monkeypatch.setattr(sync_transports, "urllib3_available", lambda: False)
        assert choose_sync_backend("auto", transport=None) == "httpx"
        with pytest.raises(ValueError, match=r"\[fast\]"):
            choose_sync_backend("urllib3", transport=None)

    def test_explicit_choices(self) -> None:
        """httpx and urllib3 are kept as asked; anything else is refused by name."""
        assert choose_sync_backend("httpx", transport=None) == "httpx"
        assert choose_sync_backend("urllib3", transport=None) == "urllib3"
        with pytest.raises(ValueError, match="'curl'"):
            choose_sync_backend("curl", transport=None)  # type: ignore[arg-type]
        mock = httpx.MockTransport(lambda request: httpx.Response(200))
        with pytest.raises(ValueError, match="transport"):
            choose_sync_backend("urllib3", transport=mock)


class TestUrllib3Errors:
    @pytest.mark.parametrize(
        ("exc", "error"),
        [
            (u3.ConnectTimeoutError(None, "connect timed out"), ProviderTimeoutError),
            (u3.ReadTimeoutError(None, "/v1", "read timed out"), ProviderTimeoutError),
            (TimeoutError(), ProviderTimeoutError),
            (ConnectionRefusedError(111, "refused"), ProviderConnectionError),
            (u3.NewConnectionError(None, "refused"), ProviderConnectionError),
            (
                u3.NameResolutionError("nowhere.invalid", None, socket.gaierror()),
                ProviderConnectionError,
            ),
            (
                u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
                ProviderConnectionError,
            ),
            (u3.IncompleteRead(10, 90), ProviderConnectionError),
            (u3.SSLError("certificate verify failed"), ProviderConnectionError),
            (http.client.RemoteDisconnected("closed"), ProviderConnectionError),
            (ConnectionResetError(104, "reset"), ProviderConnectionError),
            (u3.LocationParseError("http://host:notaport"), BadRequestError),
            (u3.URLSchemeUnknown("ftp"), BadRequestError),
        ],
    )
    def test_each_failure_has_its_type(self, exc: BaseException, error: type) -> None:
        """urllib3 failures map to the same typed errors as httpx's and aiohttp's do."""
        mapped = urllib3_error(exc, "gemini")
        assert type(mapped) is error
        assert mapped.provider == "gemini"

    def test_a_quoted_url_loses_its_credentials(self) -> None:
        """urllib3 quotes a URL it cannot parse whole; the message keeps it without user:pw."""
        exc = u3.LocationParseError("http://u:PWSECRET@127.0.0.1:99999/v1beta/models")
        message = str(urllib3_error(exc, "gemini"))
        assert "PWSECRET" not in message
        assert "http://<redacted>@127.0.0.1:99999" in message

    def test_a_bug_of_ours_is_not_a_network_error(self) -> None:
        """Anything that is not a transport failure surfaces as itself."""
        with pytest.raises(TypeError):
            urllib3_error(TypeError("a bug"), "gemini")

    @pytest.mark.parametrize("url", ["http://host:notaport/v1", "ftp://127.0.0.1/v1", "no-scheme"])
    def test_unusable_url_is_a_bad_request(self, url: str) -> None:
        """A URL urllib3 cannot use comes back as BadRequestError, without a request sent."""
        sender = Urllib3Sender()
        try:
            assert type(sender.send(_send(url))) is BadRequestError
        finally:
            sender.close()

    @pytest.mark.parametrize("bad", ["clé", "a\r\nX-Injected: 1"])
    def test_uncarriable_header_is_refused_without_echo(self, bad: str) -> None:
        """A header value HTTP cannot carry is a BadRequestError that never repeats it."""
        sender = Urllib3Sender()
        try:
            error = sender.send(_send("http://127.0.0.1:9/", {"x-goog-api-key": bad}))
        finally:
            sender.close()
        assert isinstance(error, BadRequestError)
        assert bad not in str(error)
        assert "X-Injected" not in str(error)


OK_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def _senders() -> list[SyncSender]:
    return [HttpxSyncSender(timeout_s=2.0), Urllib3Sender()]


@pytest.mark.parametrize("key", [SECRET + " ", " " + SECRET, SECRET + "\x00", SECRET + "\t"])
def test_no_sender_quotes_a_key_http_cannot_carry(key: str) -> None:
    """A key with a space or tab at an end, or a control character, is refused by every sender
    before it is sent — h11 would have quoted it in its error."""
    for sender in _senders():
        with RawServer([OK_ANSWER, OK_ANSWER]) as server:
            try:
                result = sender.send(_send(server.url + "/v1", {"x-goog-api-key": key}))
            finally:
                sender.close()
            assert isinstance(result, BadRequestError), type(sender).__name__
            assert SECRET not in str(result)
            assert server.requests == []


def test_url_credentials_are_basic_auth_on_both_senders() -> None:
    """user:password@ in a base URL is sent as Basic auth by urllib3 as by httpx (percent-
    escapes decoded), replacing an authorization header the request sets, as httpx does."""
    for sender in _senders():
        with RawServer([OK_ANSWER, OK_ANSWER]) as server:
            base = server.url.replace("http://", "http://gate%40user:pw@")
            try:
                assert isinstance(sender.send(_send(base + "/v1", {})), HttpReply)
                explicit = {"Authorization": "Bearer mine"}
                assert isinstance(sender.send(_send(base + "/v1", explicit)), HttpReply)
            finally:
                sender.close()
        implied, given = (request.lower() for request in server.requests)
        assert b"\r\nauthorization: basic z2f0zub1c2vyonb3\r\n" in implied  # gate@user:pw
        assert given.count(b"\r\nauthorization:") == 1
        assert b"\r\nauthorization: basic z2f0zub1c2vyonb3\r\n" in given


def test_defaults_never_duplicate_a_header_the_request_sets() -> None:
    """A request's own Accept (any case) replaces the default one, never joins it."""
    with RawServer([OK_ANSWER]) as server:
        sender = Urllib3Sender()
        try:
            sender.send(_send(server.url + "/v1", {"Accept": "text/event-stream"}))
        finally:
            sender.close()
    [request] = server.requests
    assert request.lower().count(b"\r\naccept:") == 1
    assert b"text/event-stream" in request
