"""The async senders: which one `AsyncClient` picks, and how aiohttp failures are typed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from nexus_llm import transports
from nexus_llm.errors import (
    BadRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
)
from nexus_llm.transports import AiohttpSender, HttpxSender, choose_backend, make_sender
from tests.support import SENDER_SECRET, send_effect, without_proxy_env

aiohttp = pytest.importorskip("aiohttp")

SECRET = SENDER_SECRET
_send = send_effect


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxy_env(monkeypatch)


class TestChooseBackend:
    def test_auto_prefers_aiohttp(self) -> None:
        """With aiohttp installed, no transport and no proxy, auto sends over aiohttp."""
        assert choose_backend("auto", transport=None) == "aiohttp"

    def test_an_httpx_transport_means_httpx(self) -> None:
        """An injected httpx transport (tests' MockTransport) keeps the httpx sender."""
        mock = httpx.MockTransport(lambda request: httpx.Response(200))
        assert choose_backend("auto", transport=mock) == "httpx"
        assert isinstance(
            make_sender("auto", timeout_s=1, max_connections=1, transport=mock), HttpxSender
        )

    def test_proxy_variables_mean_httpx(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Proxy variables set: auto uses httpx, which honours them for non-loopback hosts."""
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
        assert choose_backend("auto", transport=None) == "httpx"

    def test_without_aiohttp_auto_falls_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When aiohttp is not importable, auto uses httpx and a forced aiohttp says why."""
        monkeypatch.setattr(transports, "aiohttp_available", lambda: False)
        assert choose_backend("auto", transport=None) == "httpx"
        with pytest.raises(ValueError, match=r"\[fast\]"):
            choose_backend("aiohttp", transport=None)

    def test_explicit_choices(self) -> None:
        """httpx and aiohttp are kept as asked; anything else is refused by name."""
        assert choose_backend("httpx", transport=None) == "httpx"
        assert isinstance(
            make_sender("aiohttp", timeout_s=1, max_connections=1, transport=None), AiohttpSender
        )
        with pytest.raises(ValueError, match="'curl'"):
            choose_backend("curl", transport=None)  # type: ignore[arg-type]
        mock = httpx.MockTransport(lambda request: httpx.Response(200))
        with pytest.raises(ValueError, match="transport"):
            choose_backend("aiohttp", transport=mock)


class TestAiohttpErrors:
    @pytest.mark.parametrize(
        ("exc", "error"),
        [
            (aiohttp.ConnectionTimeoutError("connect"), ProviderTimeoutError),
            (aiohttp.SocketTimeoutError("read"), ProviderTimeoutError),
            (TimeoutError(), ProviderTimeoutError),
            (aiohttp.ServerDisconnectedError(), ProviderConnectionError),
            (aiohttp.ClientPayloadError("not completed"), ProviderConnectionError),
            (aiohttp.ClientOSError(104, "Connection reset by peer"), ProviderConnectionError),
            (ConnectionResetError(104, "reset"), ProviderConnectionError),
            (aiohttp.InvalidURL("http://host:notaport"), BadRequestError),
        ],
    )
    def test_each_failure_has_its_type(self, exc: BaseException, error: type) -> None:
        """aiohttp failures map to the same typed errors as httpx's do."""
        mapped = transports.aiohttp_error(exc, "gemini")
        assert type(mapped) is error
        assert mapped.provider == "gemini"

    def test_unusable_url_is_a_bad_request(self) -> None:
        """A URL aiohttp cannot use comes back as BadRequestError, without a request sent."""

        async def run() -> ProviderError | object:
            sender = AiohttpSender(max_connections=1)
            try:
                return await sender.send(_send("https://host:notaport/v1"))
            finally:
                await sender.aclose()

        assert type(asyncio.run(run())) is BadRequestError

    @pytest.mark.parametrize("bad", ["clé", "a\r\nX-Injected: 1"])
    def test_uncarriable_header_is_refused_without_echo(self, bad: str) -> None:
        """A header value HTTP cannot carry is a BadRequestError that never repeats it."""

        async def run() -> object:
            sender = AiohttpSender(max_connections=1)
            try:
                return await sender.send(_send("http://127.0.0.1:9/", {"x-goog-api-key": bad}))
            finally:
                await sender.aclose()

        error = asyncio.run(run())
        assert isinstance(error, BadRequestError)
        assert bad not in str(error)

    def test_refused_connection_never_names_the_key(self) -> None:
        """A refused connection is a ProviderConnectionError whose message holds no header."""

        async def run() -> object:
            sender = AiohttpSender(max_connections=1)
            try:
                return await sender.send(_send("http://127.0.0.1:9/"))
            finally:
                await sender.aclose()

        error = asyncio.run(run())
        assert isinstance(error, ProviderConnectionError)
        assert SECRET not in str(error)

    def test_aclose_without_use_is_fine(self) -> None:
        """Closing a sender that never sent does nothing (the session is made lazily)."""
        asyncio.run(AiohttpSender(max_connections=1).aclose())
