"""How `AsyncClient` sends a pipeline's `Send` effect: over aiohttp when installed, else httpx.

httpx's async pool collapses under concurrency (about 240 calls/s at 50 in flight on loopback,
p99 over a second); aiohttp's does not (about 2,400). Both senders return the same thing the
pipeline expects, an `HttpReply` or a typed `ProviderError`, and never put a header (a key) into
a message.

aiohttp is the optional extra ``fast`` (``pip install 'pytest-nexus-rehearsal[fast]'``); without
it, or with an httpx transport injected (``transport=``, as tests do), the httpx sender is used.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

from .errors import ProviderError
from .http_shared import (
    carriable,
    connection_failed,
    describe,
    httpx_error,
    loopback_mounts,
    resolve_backend,
    timed_out,
    uncarriable,
    unusable_url,
)
from .pipeline import OpenStream, Send, StreamOpened
from .streams import AsyncStreamHandle
from .types import HttpReply

if TYPE_CHECKING:
    import aiohttp

HttpBackend = Literal["auto", "aiohttp", "httpx"]


class AsyncSender(Protocol):
    """Sends one request for `AsyncClient`; transport failures come back as typed errors."""

    async def send(self, effect: Send) -> HttpReply | ProviderError: ...

    async def open_stream(
        self, effect: OpenStream
    ) -> tuple[StreamOpened | HttpReply | ProviderError, AsyncStreamHandle | None]:
        """A 200 stays open (its handle reads the body); any other status is read whole."""
        ...

    async def aclose(self) -> None: ...


def aiohttp_available() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


def choose_backend(
    backend: HttpBackend, *, transport: httpx.AsyncBaseTransport | None
) -> Literal["aiohttp", "httpx"]:
    """Resolve ``auto`` (see `resolve_backend`): aiohttp when it can, else httpx."""
    chosen = resolve_backend(
        backend,
        fast="aiohttp",
        fast_available=aiohttp_available(),
        transport_given=transport is not None,
    )
    return "aiohttp" if chosen == "aiohttp" else "httpx"


class HttpxSender:
    """Sends through one `httpx.AsyncClient` (env proxies honoured except for loopback)."""

    __slots__ = ("_http",)

    def __init__(
        self,
        *,
        timeout_s: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout_s,
            limits=limits,
            mounts=None if transport else loopback_mounts(httpx.AsyncHTTPTransport, limits),
        )

    async def send(self, effect: Send) -> HttpReply | ProviderError:
        req = effect.request
        if not carriable(req.headers):
            return uncarriable(effect.provider)
        try:
            reply = await self._http.request(
                req.method,
                req.url,
                headers=req.headers,
                content=req.body,
                timeout=effect.timeout_s,
            )
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            return httpx_error(exc, effect.provider)
        return HttpReply(reply.status_code, reply.headers, reply.content)

    async def open_stream(
        self, effect: OpenStream
    ) -> tuple[StreamOpened | HttpReply | ProviderError, AsyncStreamHandle | None]:
        req = effect.request
        if not carriable(req.headers):
            return uncarriable(effect.provider), None
        try:
            request = self._http.build_request(
                req.method, req.url, headers=req.headers, content=req.body, timeout=effect.timeout_s
            )
            response = await self._http.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            return httpx_error(exc, effect.provider), None
        if response.status_code == 200:
            return StreamOpened(200, response.headers), _HttpxStream(response, effect.provider)
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            return httpx_error(exc, effect.provider), None
        finally:
            await response.aclose()
        return HttpReply(response.status_code, response.headers, body), None

    async def aclose(self) -> None:
        await self._http.aclose()


class _HttpxStream:
    __slots__ = ("_chunks", "_provider", "_response")

    def __init__(self, response: httpx.Response, provider: str) -> None:
        self._response = response
        self._chunks = response.aiter_bytes()
        self._provider = provider

    async def read(self) -> bytes | ProviderError:
        try:
            return await anext(self._chunks, b"")
        except httpx.HTTPError as exc:
            return httpx_error(exc, self._provider)

    async def aclose(self) -> None:
        await self._response.aclose()


class AiohttpSender:
    """Sends through one `aiohttp.ClientSession`, made on first use inside the running loop.

    Never uses proxies (``trust_env=False``: no proxy variables, no ``.netrc``); ``auto`` picks
    httpx instead when proxy variables are set. Timeouts follow httpx's meaning of one
    ``timeout_s``: for the connection (pool wait included) and for each read, not the total.
    """

    __slots__ = ("_loop", "_max_connections", "_session", "_timeouts")

    def __init__(self, *, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _current(self) -> aiohttp.ClientSession:
        """The session of the running loop: a client reused under a new `asyncio.run()` gets a
        fresh one (the old loop, and the sockets bound to it, are gone)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            self._loop = loop
            return self._open()
        return self._session

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            import aiohttp

            timeout = aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
            self._timeouts[seconds] = timeout
        return timeout

    async def send(self, effect: Send) -> HttpReply | ProviderError:
        import aiohttp

        req = effect.request
        if not carriable(req.headers):
            return uncarriable(effect.provider)
        session = self._current()
        try:
            async with session.request(
                req.method,
                req.url,
                headers=req.headers,
                data=req.body,
                timeout=self._timeout(effect.timeout_s),
                allow_redirects=False,
            ) as reply:
                body = await reply.read()
                return HttpReply(reply.status, reply.headers, body)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return aiohttp_error(exc, effect.provider)

    async def open_stream(
        self, effect: OpenStream
    ) -> tuple[StreamOpened | HttpReply | ProviderError, AsyncStreamHandle | None]:
        import aiohttp

        req = effect.request
        if not carriable(req.headers):
            return uncarriable(effect.provider), None
        session = self._current()
        try:
            reply = await session.request(
                req.method,
                req.url,
                headers=req.headers,
                data=req.body,
                timeout=self._timeout(effect.timeout_s),
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return aiohttp_error(exc, effect.provider), None
        if reply.status == 200:
            return StreamOpened(200, reply.headers), _AiohttpStream(reply, effect.provider)
        try:
            body = await reply.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return aiohttp_error(exc, effect.provider), None
        finally:
            reply.release()
        return HttpReply(reply.status, reply.headers, body), None

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _AiohttpStream:
    __slots__ = ("_provider", "_reply")

    def __init__(self, reply: aiohttp.ClientResponse, provider: str) -> None:
        self._reply = reply
        self._provider = provider

    async def read(self) -> bytes | ProviderError:
        import aiohttp

        try:
            return await self._reply.content.readany()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return aiohttp_error(exc, self._provider)

    async def aclose(self) -> None:
        # Read to the end: the connection goes back to the pool; cut short: it is closed.
        if self._reply.content.at_eof():
            self._reply.release()
        else:
            self._reply.close()


def aiohttp_error(exc: BaseException, provider: str) -> ProviderError:
    """The typed error for an aiohttp failure, classed as `httpx_error` does for httpx."""
    import aiohttp

    detail = describe(exc)
    bad_url: tuple[type[BaseException], ...] = (aiohttp.InvalidURL,)
    non_http: Any = getattr(aiohttp, "NonHttpUrlClientError", None)  # aiohttp >= 3.10
    if non_http is not None:
        bad_url += (non_http,)
    if isinstance(exc, bad_url):
        return unusable_url(detail, provider)
    if isinstance(exc, UnicodeError):
        return uncarriable(provider)
    if isinstance(exc, TimeoutError):  # ServerTimeoutError and friends subclass it
        return timed_out(detail, provider)
    return connection_failed(detail, provider)


def make_sender(
    backend: HttpBackend,
    *,
    timeout_s: float,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None,
) -> AsyncSender:
    if choose_backend(backend, transport=transport) == "aiohttp":
        return AiohttpSender(max_connections=max_connections)
    return HttpxSender(timeout_s=timeout_s, max_connections=max_connections, transport=transport)
