"""The value objects that travel through the pipeline. Plain data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    text: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the caller asked for, provider-neutral."""

    messages: tuple[Message, ...]
    system: str | None = None
    model: str | None = None  # None: the provider's configured model
    temperature: float | None = None
    max_tokens: int | None = None
    json_mode: bool = False

    def prompt_text(self) -> str:
        """All prompt text, for hashing and token estimation (never for logging by default)."""
        parts = [self.system] if self.system else []
        parts.extend(m.text for m in self.messages)
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts in one meaning for every provider.

    `input_tokens` is every prompt token, cached ones included (the OpenTelemetry GenAI meaning);
    `cached_tokens` is the part of it read from cache and `cache_write_tokens` the part written
    to it (Anthropic bills those apart), `cache_write_1h_tokens` the part of those writes made
    with a 1-hour TTL (billed at twice the input rate, not the 5-minute write rate).
    `output_tokens` is every billed output
    token, reasoning ("thinking") ones included; `reasoning_tokens` is the part of it spent
    thinking.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP request an adapter wants sent. Headers may hold secrets: never log them."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class ProviderReply:
    """What an adapter parsed out of a successful answer. `usage` is None when absent."""

    text: str
    finish_reason: str
    model: str
    response_id: str | None
    usage: Usage | None


@dataclass(frozen=True, slots=True)
class Response:
    """What `Client.generate` returns."""

    text: str
    finish_reason: str
    provider: str
    model: str
    response_id: str | None
    request_id: str
    usage: Usage
    approx_tokens: bool
    cost_usd: float
    price_version: str
    latency_ms: float
    team: str
    project: str
    purpose: str
    dedupe_hit: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)
