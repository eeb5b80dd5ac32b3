"""nexus_llm: a Gemini-first LLM client that leaves an audit log, a cost ledger and metrics.

The public API is exactly what `__all__` lists; everything else is internal.
"""

from __future__ import annotations

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
from .tags import carry_tags, current_tags, tags
from .types import Message, Response, Usage

__version__ = "0.1.0"

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
