"""Provider adapters: pure request builders and response parsers, one module per provider."""

from __future__ import annotations

from .base import ProviderAdapter
from .gemini import GeminiAdapter

_ADAPTERS: dict[str, ProviderAdapter] = {"gemini": GeminiAdapter()}


def adapter_for(name: str) -> ProviderAdapter | None:
    """The adapter for a provider name, or None when this version has none yet."""
    return _ADAPTERS.get(name)


def supported_providers() -> list[str]:
    return list(_ADAPTERS)


__all__ = ["ProviderAdapter", "adapter_for", "supported_providers"]
