"""How `Client` sends a pipeline's `Send` effect: over urllib3 when installed, else httpx.

On loopback, httpx spends about 650 µs of CPU per request (its client, httpcore and h11 layers);
urllib3 about 450 µs for the same request (`benchmarks/client_overhead.py` prints both). That
difference is most of what a sync call costs beyond the provider itself, so `Client` sends over
urllib3 when it can. Both senders return what the pipeline expects, an `HttpReply` or a typed
`ProviderError`, and never put a header (a key) into a message.

urllib3 comes with the optional extra ``fast`` (``pip install 'pytest-nexus-rehearsal[fast]'``).
``auto`` keeps httpx when urllib3 is missing, when an httpx transport is injected
(``transport=``, as tests do) and when a proxy variable is set: the urllib3 sender never uses
a proxy, while httpx honours them for every host but loopback. Tests that mock HTTP with
respx must choose ``http_backend="httpx"``: respx patches httpx only.
"""

from __future__ import annotations

import importlib.util
import ssl
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import unquote

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
from .types import HttpReply

if TYPE_CHECKING:
    import urllib3

SyncBackend = Literal["auto", "urllib3", "httpx"]

# Kept idle per host; more may open while threads wait on slow answers (they are not kept).
_POOL_SIZE = 20
_STREAM_READ_BYTES = 65536
_ROUTES_KEPT = 1024  # distinct URLs remembered (a few per provider and model)
# What httpx asks for by default, so a provider answers both senders alike.
_DEFAULT_HEADERS = {"accept": "*/*", "accept-encoding": "gzip, deflate"}


class SyncStreamHandle(Protocol):
    """An open streamed answer in a sync sender."""

    def read(self) -> bytes | ProviderError:
        """The next bytes (b"" at the end) or the transport error that ended the stream."""
        ...

    def close(self) -> None: ...


class SyncSender(Protocol):
    """Sends one request for `Client`; transport failures come back as typed errors."""

    def send(self, effect: Send) -> HttpReply | ProviderError: ...

    def open_stream(
        self, effect: OpenStream
    ) -> tuple[StreamOpened | HttpReply | ProviderError, SyncStreamHandle | None]:
        """A 200 stays open (its handle reads the body); any other status is read whole."""
        ...

    def close(self) -> None: ...


def urllib3_available() -> bool:
    return importlib.util.find_spec("urllib3") is not None


def choose_sync_backend(
    backend: SyncBackend, *, transport: httpx.BaseTransport | None
) -> Literal["urllib3", "httpx"]:
    """Resolve ``auto`` (see `resolve_backend`): urllib3 when it can, else httpx."""
    chosen = resolve_backend(
        backend,
        fast="urllib3",
        fast_available=urllib3_available(),
        transport_given=transport is not None,
    )
    return "urllib3" if chosen == "urllib3" else "httpx"


def make_sync_sender(
    backend: SyncBackend, *, timeout_s: float, transport: httpx.BaseTransport | None
) -> SyncSender:
    if choose_sync_backend(backend, transport=transport) == "urllib3":
        return Urllib3Sender()
    return HttpxSyncSender(timeout_s=timeout_s, transport=transport)


class HttpxSyncSender:
    """Sends through one `httpx.Client` (env proxies honoured except for loopback)."""

    __slots__ = ("_http",)

    def __init__(self, *, timeout_s: float, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout_s,
            mounts=None if transport else loopback_mounts(httpx.HTTPTransport),
        )

    def send(self, effect: Send) -> HttpReply | ProviderError:
        req = effect.request
        if not carriable(req.headers):
            return uncarriable(effect.provider)
        try:
            reply = self._http.request(
                req.method,
                req.url,
                headers=req.headers,
                content=req.body,
                timeout=effect.timeout_s,
            )
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            return httpx_error(exc, effect.provider)
        return HttpReply(reply.status_code, reply.headers, reply.content)

    def open_stream(
        self, effect: OpenStream
    ) -> tuple[StreamOpened | HttpReply | ProviderError, SyncStreamHandle | None]:
        req = effect.request
        if not carriable(req.headers):
            return uncarriable(effect.provider), None
        try:
            request = self._http.build_request(
                req.method, req.url, headers=req.headers, content=req.body, timeout=effect.timeout_s
            )
            response = self._http.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            return httpx_error(exc, effect.provider), None
        if response.status_code == 200:
            return StreamOpened(200, response.headers), _HttpxStream(response, effect.provider)
        try:
            body = response.read()
        except httpx.HTTPError as exc:
            return httpx_error(exc, effect.provider), None
        finally:
            response.close()
        return HttpReply(response.status_code, response.headers, body), None

    def close(self) -> None:
        self._http.close()


class _HttpxStream:
    __slots__ = ("_chunks", "_provider", "_response")

    def __init__(self, response: httpx.Response, provider: str) -> None:
        self._response = response
        self._chunks = response.iter_bytes()
        self._provider = provider

    def read(self) -> bytes | ProviderError:
        try:
            return next(self._chunks, b"")
        except httpx.HTTPError as exc:
            return httpx_error(exc, self._provider)

    def close(self) -> None:
        self._response.close()


class Urllib3Sender:
    """Sends through urllib3 connection pools, one per scheme, host and port.

    Never uses proxies (``auto`` picks httpx when proxy variables are set), never retries or
    follows redirects itself (the pipeline decides retries), and verifies TLS exactly as httpx
    does (certifi, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``). A timeout has httpx's meaning: for
    the connection and for each read, not the total. Thread-safe, as `Client` promises.
    """

    __slots__ = ("_lock", "_pools", "_routes", "_ssl", "_timeouts")

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int | None], urllib3.HTTPConnectionPool] = {}
        # url -> (pool, path, headers the URL implies): a provider calls the same few URLs;
        # parse each once.
        self._routes: dict[str, _Route] = {}
        self._timeouts: dict[float, urllib3.Timeout] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def send(self, effect: Send) -> HttpReply | ProviderError:
        try:
            reply = self._urlopen(effect, stream=False)
        except Exception as exc:  # classified below; a bug of ours is re-raised
            return urllib3_error(exc, effect.provider)
        return HttpReply(reply.status, reply.headers, reply.data)

    def open_stream(
        self, effect: OpenStream
    ) -> tuple[StreamOpened | HttpReply | ProviderError, SyncStreamHandle | None]:
        try:
            reply = self._urlopen(effect, stream=True)
        except Exception as exc:  # classified below
            return urllib3_error(exc, effect.provider), None
        if reply.status == 200:
            return StreamOpened(200, reply.headers), _Urllib3Stream(reply, effect.provider)
        try:
            body = reply.read()
        except Exception as exc:  # classified below
            reply.close()
            return urllib3_error(exc, effect.provider), None
        finally:
            reply.release_conn()
        return HttpReply(reply.status, reply.headers, body), None

    def _urlopen(self, effect: Send | OpenStream, *, stream: bool) -> urllib3.BaseHTTPResponse:
        req = effect.request
        if not carriable(req.headers):
            raise UnicodeError("uncarriable header")  # classed without quoting the header
        pool, path, implied = self._route(req.url)
        return pool.urlopen(
            req.method,
            path,
            body=req.body,
            headers=_with_defaults(req.headers, implied),
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=self._timeout(effect.timeout_s),
            preload_content=not stream,
            release_conn=not stream,
        )

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            self._routes = {}
        for pool in pools:
            pool.close()

    def _route(self, url: str) -> _Route:
        found = self._routes.get(url)
        if found is not None:
            return found
        from urllib3.exceptions import URLSchemeUnknown
        from urllib3.util import make_headers, parse_url

        parsed = parse_url(url)
        scheme = (parsed.scheme or "").lower()
        if scheme not in ("http", "https") or not parsed.host:
            raise URLSchemeUnknown(scheme or "none")
        pool = self._pool(scheme, parsed.host, parsed.port)
        # user:password@ in a base URL is Basic auth, and replaces any authorization header —
        # as httpx does it, so both senders send the same request.
        implied = dict(_DEFAULT_HEADERS)
        if parsed.auth:
            credentials = make_headers(basic_auth=unquote(parsed.auth))
            implied |= {name.lower(): value for name, value in credentials.items()}
        found = (pool, parsed.request_uri, implied)
        with self._lock:
            if len(self._routes) < _ROUTES_KEPT:
                self._routes[url] = found
        return found

    def _pool(self, scheme: str, host: str, port: int | None) -> urllib3.HTTPConnectionPool:
        import urllib3

        key = (scheme, host, port)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if scheme == "https":
                    if self._ssl is None:
                        # The same trust as httpx: certifi, or SSL_CERT_FILE / SSL_CERT_DIR.
                        self._ssl = httpx.create_ssl_context()
                    pool = urllib3.HTTPSConnectionPool(
                        host, port, maxsize=_POOL_SIZE, ssl_context=self._ssl
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(host, port, maxsize=_POOL_SIZE)
                self._pools[key] = pool
            return pool

    def _timeout(self, seconds: float) -> urllib3.Timeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            import urllib3

            timeout = urllib3.Timeout(connect=seconds, read=seconds)
            if len(self._timeouts) < _ROUTES_KEPT:
                self._timeouts[seconds] = timeout
        return timeout


_Route = tuple["urllib3.HTTPConnectionPool", str, dict[str, str]]


def _with_defaults(headers: Mapping[str, str], implied: dict[str, str]) -> dict[str, str]:
    """The request's headers, plus each default it does not set (names compared as HTTP
    compares them, without case); credentials from the URL replace its authorization."""
    if "authorization" in implied:
        headers = {name: v for name, v in headers.items() if name.lower() != "authorization"}
    merged = dict(headers)
    given = {name.lower() for name in headers}
    for name, value in implied.items():
        if name not in given:
            merged[name] = value
    return merged


class _Urllib3Stream:
    __slots__ = ("_ended", "_provider", "_reply")

    def __init__(self, reply: urllib3.BaseHTTPResponse, provider: str) -> None:
        self._reply = reply
        self._provider = provider
        self._ended = False

    def read(self) -> bytes | ProviderError:
        try:
            chunk = self._reply.read1(_STREAM_READ_BYTES)
        except Exception as exc:  # classified below
            return urllib3_error(exc, self._provider)
        if not chunk:
            self._ended = True
        return chunk

    def close(self) -> None:
        # Read to the end: the connection goes back to the pool; cut short: it is closed first,
        # so no half-read answer is ever handed to the next request.
        if not self._ended:
            self._reply.close()
        self._reply.release_conn()


def urllib3_error(exc: BaseException, provider: str) -> ProviderError:
    """The typed error for a urllib3 (or http.client, or socket) failure, classed as
    `httpx_error` classes httpx's."""
    from urllib3 import exceptions as u3

    if isinstance(exc, UnicodeError):
        return uncarriable(provider)
    detail = describe(exc)
    if isinstance(exc, u3.LocationValueError):
        return unusable_url(detail, provider)
    # urllib3 files a refused or unreachable connection under ConnectTimeoutError: it is not one.
    if isinstance(exc, u3.NewConnectionError):
        return connection_failed(detail, provider)
    if isinstance(exc, u3.TimeoutError | TimeoutError):
        return timed_out(detail, provider)
    if isinstance(exc, u3.HTTPError | OSError | ValueError | ssl.SSLError) or _http_client(exc):
        return connection_failed(detail, provider)
    raise exc  # a bug of ours, not the network's: let it surface


def _http_client(exc: BaseException) -> bool:
    import http.client

    return isinstance(exc, http.client.HTTPException)
