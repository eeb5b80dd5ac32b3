"""nexus_llm: a Gemini-first LLM client that leaves an audit log, a cost ledger and metrics.

The public API is exactly what `__all__` lists; everything else is internal. Names load on
first use, so `import nexus_llm` (and tools such as `nexus report` that need only a corner of
the package) do not pay for the HTTP client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .config import ProviderSettings, Secret, Settings
    from .errors import (
        AuthenticationError,
        BadRequestError,
        ConfigError,
        MalformedResponseError,
        NexusError,
        NoProviderAvailableError,
        NotFoundError,
        OverloadedError,
        PermissionDeniedError,
        ProviderConnectionError,
        ProviderError,
        ProviderTimeoutError,
        QuotaExhaustedError,
        RateLimitError,
        ServerError,
    )
    from .tagging import carry_tags, current_tags, tags
    from .types import Message, Response, Usage

__version__ = "0.1.0"

_ERRORS = (
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "MalformedResponseError",
    "NexusError",
    "NoProviderAvailableError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "QuotaExhaustedError",
    "RateLimitError",
    "ServerError",
)
_WHERE = {
    "AsyncClient": "client",
    "Client": "client",
    "ProviderSettings": "config",
    "Secret": "config",
    "Settings": "config",
    "Message": "types",
    "Response": "types",
    "Usage": "types",
    "carry_tags": "tagging",
    "current_tags": "tagging",
    "tags": "tagging",
    **dict.fromkeys(_ERRORS, "errors"),
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'nexus_llm' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigError",
    "MalformedResponseError",
    "Message",
    "NexusError",
    "NoProviderAvailableError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderSettings",
    "ProviderTimeoutError",
    "QuotaExhaustedError",
    "RateLimitError",
    "Response",
    "Secret",
    "ServerError",
    "Settings",
    "Usage",
    "__version__",
    "carry_tags",
    "current_tags",
    "tags",
]
