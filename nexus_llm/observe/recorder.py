"""Writes what a call left behind: audit events and ledger lines (metrics join here later).

A failure to write (disk full, permissions) is logged and counted but never fails the caller's
LLM call: the answer already exists and the user paid for it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from ..config import Settings
from ..errors import ProviderError, is_rate_limited
from ..protect.breaker import CLOSED, HALF_OPEN, OPEN, STATE_VALUES
from ..protect.dedupe import CachedAnswer
from ..tagging import ResolvedTags
from ..types import ChatRequest, ProviderReply, Usage
from . import metrics
from .audit import AuditLog, Clock, utc_now
from .ledger import CostLedger, LedgerEntry
from .pricing import Price

log = logging.getLogger("nexus_llm")


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who asked for what, fixed for the whole call across attempts and providers."""

    request_id: str
    tags: ResolvedTags
    prompt_sha256: str
    prompt_chars: int
    prompt: str | None  # only when the user opted in to prompt logging

    @classmethod
    def create(
        cls, request_id: str, request: ChatRequest, tags: ResolvedTags, *, log_prompts: bool
    ) -> CallContext:
        text = request.prompt_text()
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (undecodable bytes from argv or a file): no provider takes it.
            raise ValueError(
                "the prompt holds text that is not valid Unicode (a lone surrogate): decode "
                "its source as UTF-8 first"
            ) from None
        return cls(
            request_id=request_id,
            tags=tags,
            prompt_sha256=hashlib.sha256(encoded).hexdigest()[:16],
            prompt_chars=len(text),
            prompt=text if log_prompts else None,
        )

    def fields(self, provider: str, model: str) -> dict[str, object]:
        out: dict[str, object] = {
            "request_id": self.request_id,
            "provider": provider,
            "model": model,
            "purpose": self.tags.purpose,
            "team": self.tags.team,
            "project": self.tags.project,
            "prompt_sha256": self.prompt_sha256,
            "prompt_chars": self.prompt_chars,
        }
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out


class Recorder:
    def __init__(self, settings: Settings, *, clock: Clock = utc_now) -> None:
        self.audit = AuditLog(settings.audit_log_path, env=settings.env, clock=clock)
        self.ledger = CostLedger(settings.cost_ledger_path, env=settings.env, clock=clock)
        self.write_errors = 0

    def success(
        self,
        ctx: CallContext,
        *,
        provider: str,
        model: str,
        reply: ProviderReply,
        usage: Usage,
        approx_tokens: bool,
        price: Price,
        latency_ms: float,
        attempt: int,
    ) -> None:
        event = ctx.fields(provider, model)
        event.update(
            response_model=reply.model,
            response_id=reply.response_id,
            finish_reason=reply.finish_reason,
            status=200,
            attempt=attempt,
            latency_ms=round(latency_ms, 3),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            approx_tokens=approx_tokens,
            cost_usd=price.cost_usd,
        )
        self._write_event("llm_success", event)
        metrics.child(metrics.REQUESTS, provider, model, "success").inc()
        metrics.child(metrics.LATENCY, provider, model).observe(latency_ms / 1000)
        self.bill(
            ctx,
            provider=provider,
            model=model,
            usage=usage,
            approx_tokens=approx_tokens,
            price=price,
        )

    def bill(
        self,
        ctx: CallContext,
        *,
        provider: str,
        model: str,
        usage: Usage,
        approx_tokens: bool,
        price: Price,
    ) -> None:
        """The call's one ledger line, with its token and cost metrics (also for a stream that
        failed after the provider had generated output: that output is billed)."""
        for direction, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cached", usage.cached_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if count:
                metrics.child(metrics.TOKENS, provider, model, direction).inc(count)
        tags = ctx.tags
        metrics.child(
            metrics.COST,
            provider,
            metrics.guard_tag("team", tags.team),
            metrics.guard_tag("project", tags.project),
            metrics.guard_tag("purpose", tags.purpose),
        ).inc(price.cost_usd)
        entry = LedgerEntry(
            request_id=ctx.request_id,
            provider=provider,
            model=model,
            team=ctx.tags.team,
            project=ctx.tags.project,
            purpose=ctx.tags.purpose,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            actual_cost_usd=price.cost_usd,
            approx_tokens=approx_tokens,
            price_version=price.price_version,
            priced=price.priced,
        )
        try:
            self.ledger.append(entry)
        except OSError as exc:
            self._write_failed(self.ledger.path, exc)

    def failure(
        self,
        ctx: CallContext,
        *,
        provider: str,
        model: str,
        error: ProviderError,
        latency_ms: float,
        attempt: int,
    ) -> None:
        event = ctx.fields(provider, model)
        event.update(
            status=error.status,
            error_type=error.error_type,
            provider_code=error.provider_code,
            retryable=error.retryable,
            retry_after_s=error.retry_after_s,
            message=error.message[:500],
            attempt=attempt,
            latency_ms=round(latency_ms, 3),
        )
        self._write_event("llm_error", event)
        metrics.child(metrics.REQUESTS, provider, model, error.error_type).inc()
        metrics.child(metrics.LATENCY, provider, model).observe(latency_ms / 1000)
        if is_rate_limited(error.status, error.error_type):
            metrics.child(metrics.RATE_LIMITED, provider).inc()

    def fallback(
        self, ctx: CallContext, *, from_provider: str, to_provider: str, reason: str
    ) -> None:
        event = ctx.fields(from_provider, "")
        del event["model"]
        event.update(from_provider=from_provider, to_provider=to_provider, reason=reason)
        self._write_event("llm_fallback", event)
        metrics.child(metrics.FALLBACKS, from_provider, to_provider, reason).inc()

    def retry(
        self, ctx: CallContext, *, provider: str, attempt: int, wait_s: float, error: ProviderError
    ) -> None:
        event = ctx.fields(provider, "")
        del event["model"]
        event.update(
            attempt=attempt,
            next_attempt=attempt + 1,
            wait_s=round(wait_s, 3),
            reason=error.error_type,
            status=error.status,
            retry_after_s=error.retry_after_s,
        )
        self._write_event("llm_retry", event)
        metrics.child(metrics.RETRIES, provider, error.error_type).inc()

    def dedupe_hit(self, ctx: CallContext, hit: CachedAnswer, *, kind: str) -> None:
        event = ctx.fields(hit.provider, hit.model)
        event.update(kind=kind, original_request_id=hit.request_id, saved_cost_usd=hit.cost_usd)
        self._write_event("llm_dedupe_hit", event)
        entry = LedgerEntry(
            request_id=ctx.request_id,
            provider=hit.provider,
            model=hit.model,
            team=ctx.tags.team,
            project=ctx.tags.project,
            purpose=ctx.tags.purpose,
            input_tokens=0,  # nothing was sent: the tokens were paid for by the original
            output_tokens=0,
            cached_tokens=0,
            reasoning_tokens=0,
            actual_cost_usd=0.0,
            approx_tokens=hit.approx_tokens,
            price_version=hit.price_version,
            dedupe_hit=True,
            saved_cost_usd=hit.cost_usd,
        )
        try:
            self.ledger.append(entry)
        except OSError as exc:
            self._write_failed(self.ledger.path, exc)
        purpose = metrics.guard_tag("purpose", ctx.tags.purpose)
        metrics.child(metrics.DEDUPE_HITS, hit.provider, purpose, kind).inc()
        metrics.child(metrics.DEDUPE_SAVED, hit.provider, purpose).inc(hit.cost_usd)

    def breaker_transition(self, provider: str, event: str, fields: dict[str, object]) -> None:
        self._write_event(event, {"provider": provider, **fields})
        state = {"breaker_open": OPEN, "breaker_half_open": HALF_OPEN}.get(event, CLOSED)
        metrics.child(metrics.BREAKER_STATE, provider).set(STATE_VALUES[state])
        metrics.child(metrics.BREAKER_TRANSITIONS, provider, state).inc()

    def state_degraded(self, reason: str, backend: str = "redis", fallback: str = "sqlite") -> None:
        self._write_event(
            "state_degraded", {"backend": backend, "fallback": fallback, "reason": reason}
        )
        metrics.child(metrics.STATE_DEGRADED, backend).inc()

    def state_recovered(self, outage_s: float, backend: str = "redis") -> None:
        self._write_event("state_recovered", {"backend": backend, "outage_s": round(outage_s, 3)})

    def _write_event(self, name: str, fields: dict[str, object]) -> None:
        try:
            self.audit.emit(name, **fields)
        except OSError as exc:
            self._write_failed(self.audit.path, exc)

    def _write_failed(self, path: object, exc: OSError) -> None:
        self.write_errors += 1
        log.error("nexus_llm could not write %s: %s", path, exc.strerror or exc)
