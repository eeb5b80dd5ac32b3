"""Provider adapters: pure request builders and response parsers, one module per provider."""

from __future__ import annotations

from .anthropic import AnthropicAdapter
from .base import ProviderAdapter
from .gemini import GeminiAdapter
from .glm import GLMAdapter
from .openai import OpenAIAdapter

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


__all__ = ["ProviderAdapter", "adapter_for", "supported_providers"]
