"""What every HTTP sender shares: how transport failures become typed errors, which hosts skip
the proxy, and whether a request can be carried at all.

The senders (`sync_transports` for `Client`, `transports` for `AsyncClient`) differ in the
library underneath; what a caller sees of a failure does not. No message here ever quotes a
header or a URL's query: either may hold the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx

from .errors import BadRequestError, ProviderConnectionError, ProviderError, ProviderTimeoutError

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_T = TypeVar("_T")


def env_proxies_set(environ: Mapping[str, str] | None = None) -> bool:
    """Whether HTTP(S)_PROXY / ALL_PROXY (either case) name a proxy."""
    env = os.environ if environ is None else environ
    return any(env.get(name) or env.get(name.upper()) for name in _PROXY_VARIABLES)


def loopback_mounts(
    transport: Callable[..., _T], limits: httpx.Limits | None = None
) -> dict[str, _T]:
    """Direct httpx transports for loopback hosts, so HTTP(S)_PROXY never carries emulator
    traffic (or its key) to a proxy; every other host still honours the proxy variables."""
    kwargs = {"limits": limits} if limits else {}
    return {f"all://{host}": transport(**kwargs) for host in ("127.0.0.1", "localhost", "[::1]")}


def carriable(headers: Mapping[str, str]) -> bool:
    """Whether every header name and value is plain ASCII on one line (what HTTP/1.1 can
    carry as given); the libraries that check later would quote the offending value."""
    return all(
        name.isascii() and value.isascii() and not _breaks_line(name) and not _breaks_line(value)
        for name, value in headers.items()
    )


def _breaks_line(text: str) -> bool:
    return "\r" in text or "\n" in text


def uncarriable(provider: str) -> BadRequestError:
    # Never echo the text: it may be a header, i.e. the key.
    return BadRequestError(
        "the request holds characters HTTP cannot carry (check the key)", provider=provider
    )


def unusable_url(detail: str, provider: str) -> BadRequestError:
    return BadRequestError(f"the provider URL is unusable ({detail})", provider=provider)


def timed_out(detail: str, provider: str) -> ProviderTimeoutError:
    return ProviderTimeoutError(f"no answer in time ({detail})", provider=provider)


def connection_failed(detail: str, provider: str) -> ProviderConnectionError:
    return ProviderConnectionError(f"connection failed ({detail})", provider=provider)


def describe(exc: BaseException) -> str:
    """The class and errno text of a transport failure, bounded."""
    return f"{type(exc).__name__}: {exc}"[:200]


def httpx_error(
    exc: httpx.HTTPError | httpx.InvalidURL | UnicodeError, provider: str
) -> ProviderError:
    """The typed error for an httpx failure."""
    # httpx messages name the failure, not the request; still, keep to the class name and
    # errno text so no header or URL can slip into a log line.
    if isinstance(exc, UnicodeError):
        return uncarriable(provider)
    detail = describe(exc)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return unusable_url(detail, provider)
    if isinstance(exc, httpx.TimeoutException):
        return timed_out(detail, provider)
    return connection_failed(detail, provider)
