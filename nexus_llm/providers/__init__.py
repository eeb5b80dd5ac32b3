"""Provider adapters: pure request builders and response parsers, one module per provider."""

from __future__ import annotations

from .anthropic import AnthropicAdapter
from .base import ProviderAdapter, StreamParser
from .gemini import GeminiAdapter
from .glm import GLMAdapter
from .openai import OpenAIAdapter
from .sse import SSEDecoder, SSEEvent

_ADAPTERS: dict[str, ProviderAdapter] = {
    "gemini": GeminiAdapter(),
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "glm": GLMAdapter(),
}


def adapter_for(name: str) -> ProviderAdapter | None:
    """The adapter for a provider name, or None when this version has none yet."""
    return _ADAPTERS.get(name)


def supported_providers() -> list[str]:
    return list(_ADAPTERS)


__all__ = [
    "ProviderAdapter",
    "SSEDecoder",
    "SSEEvent",
    "StreamParser",
    "adapter_for",
    "supported_providers",
]
