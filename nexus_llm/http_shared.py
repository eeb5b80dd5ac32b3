"""What every HTTP sender shares: how transport failures become typed errors, which hosts skip
the proxy, and whether a request can be carried at all.

The senders (`sync_transports` for `Client`, `transports` for `AsyncClient`) differ in the
library underneath; what a caller sees of a failure does not. No message here ever quotes a
header or a URL's query: either may hold the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx

from .errors import BadRequestError, ProviderConnectionError, ProviderError, ProviderTimeoutError

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
# RFC 9110 field names (tokens) and values (visible ASCII, spaces and tabs inside only): what
# h11 accepts; http.client and aiohttp are laxer, so every sender checks the same way first.
# "scheme://user:password@host": the credentials part, wherever a URL is quoted in a message.
_USERINFO = re.compile(r"(//)[^/@\s'\"]*@")
_FIELD_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")
_T = TypeVar("_T")


def env_proxies_set(environ: Mapping[str, str] | None = None) -> bool:
    """Whether HTTP(S)_PROXY / ALL_PROXY (either case) name a proxy."""
    env = os.environ if environ is None else environ
    return any(env.get(name) or env.get(name.upper()) for name in _PROXY_VARIABLES)


def resolve_backend(backend: str, *, fast: str, fast_available: bool, transport_given: bool) -> str:
    """Which library a client sends over: ``httpx``, or `fast` (urllib3 for `Client`, aiohttp
    for `AsyncClient`). ``auto`` picks `fast` when it is installed, no httpx transport is
    injected and no proxy variable is set (the fast senders never use a proxy; httpx honours
    them for every host but loopback). An explicit choice is kept, or refused saying why."""
    if backend == "httpx":
        return "httpx"
    if backend == fast:
        if transport_given:
            raise ValueError(f"http_backend={fast!r} cannot use an httpx transport= as well")
        if not fast_available:
            raise ValueError(
                f"http_backend={fast!r} needs {fast}: pip install 'pytest-nexus-rehearsal[fast]'"
            )
        return fast
    if backend != "auto":
        raise ValueError(f"http_backend={backend!r} is invalid: expected auto, {fast} or httpx")
    if not transport_given and fast_available and not env_proxies_set():
        return fast
    return "httpx"


def loopback_mounts(
    transport: Callable[..., _T], limits: httpx.Limits | None = None
) -> dict[str, _T]:
    """Direct httpx transports for loopback hosts, so HTTP(S)_PROXY never carries emulator
    traffic (or its key) to a proxy; every other host still honours the proxy variables."""
    kwargs = {"limits": limits} if limits else {}
    return {f"all://{host}": transport(**kwargs) for host in ("127.0.0.1", "localhost", "[::1]")}


def carriable(headers: Mapping[str, str]) -> bool:
    """Whether every header is a valid HTTP/1.1 field as given: a token name, and a value of
    visible ASCII with no control character and no space or tab at either end. The libraries
    that check later would quote the offending value — the key — in their error."""
    return all(
        _FIELD_NAME.fullmatch(name) is not None
        and _FIELD_VALUE.fullmatch(value) is not None
        and value == value.strip(" \t")
        for name, value in headers.items()
    )


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


def mask_userinfo(text: str) -> str:
    """`text` with the credentials of any URL in it replaced by `<redacted>`."""
    return _USERINFO.sub(r"\1<redacted>@", text)


def describe(exc: BaseException) -> str:
    """The class and errno text of a transport failure, bounded, with no URL credentials
    (urllib3 quotes the whole URL when it cannot parse one)."""
    return mask_userinfo(f"{type(exc).__name__}: {exc}")[:200]


def httpx_error(
    exc: httpx.HTTPError | httpx.InvalidURL | UnicodeError, provider: str
) -> ProviderError:
    """The typed error for an httpx failure."""
    # httpx messages name the failure, not the request; still, keep to the class name and
    # errno text so no header or URL can slip into a log line.
    if isinstance(exc, UnicodeError):
        return uncarriable(provider)
    if isinstance(exc, httpx.LocalProtocolError):
        # h11's own refusals quote what they refused (a header value: the key); keep the class.
        return connection_failed(type(exc).__name__, provider)
    detail = describe(exc)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return unusable_url(detail, provider)
    if isinstance(exc, httpx.TimeoutException):
        return timed_out(detail, provider)
    return connection_failed(detail, provider)
