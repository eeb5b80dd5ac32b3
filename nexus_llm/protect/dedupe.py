"""Request dedupe: a TTL cache of answers, and singleflight for identical calls in flight.

The key is a SHA-256 over the canonical request (model, messages, parameters) plus purpose,
team and project: the same question asked for another team is billed to that team. The raw
prompt is never a key and never leaves the process except inside the cached answer, which
lives in the state store for the TTL only.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass

from ..state import StateStore
from ..tagging import ResolvedTags
from ..types import ChatRequest, Usage


def dedupe_key(request: ChatRequest, model: str, tags: ResolvedTags) -> str:
    canonical = {
        "model": model,
        "system": request.system,
        "messages": [[m.role, m.text] for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "json_mode": request.json_mode,
        "purpose": tags.purpose,
        "team": tags.team,
        "project": tags.project,
    }
    blob = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What a hit returns: the original answer and what it cost the first time."""

    text: str
    finish_reason: str
    provider: str
    model: str
    response_id: str | None
    request_id: str  # of the call that paid
    usage: Usage
    approx_tokens: bool
    cost_usd: float
    price_version: str

    def encode(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer | None:
        try:
            data = json.loads(raw)
            data["usage"] = Usage(**data["usage"])
            return cls(**data)
        except (ValueError, TypeError, KeyError):
            return None  # an unreadable entry is a miss, never an error


class DedupeCache:
    """The store side of dedupe: answers under `dedupe:KEY`, in-flight locks under
    `inflight:KEY` owned by a random token so only the owner releases its lock."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def lookup(self, key: str) -> CachedAnswer | None:
        raw = self._store.get(f"dedupe:{key}")
        return CachedAnswer.decode(raw) if raw is not None else None

    def claim(self, key: str, *, ttl_s: float) -> bytes | None:
        """Become the one caller that asks the provider; returns the lock token, or None."""
        token = uuid.uuid4().hex.encode()
        return token if self._store.add(f"inflight:{key}", token, ttl_s=ttl_s) else None

    def fulfil(self, key: str, answer: CachedAnswer, *, ttl_s: float, token: bytes) -> None:
        self._store.put(f"dedupe:{key}", answer.encode(), ttl_s=ttl_s)
        self.release(key, token)

    def release(self, key: str, token: bytes) -> None:
        self._store.delete(f"inflight:{key}", only_if=token)
