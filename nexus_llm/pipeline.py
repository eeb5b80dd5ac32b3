"""The call pipeline of DESIGN §2 as a sans-I/O generator, shared by `Client` and `AsyncClient`.

`CallPipeline.run()` is a generator that *describes* a call: it yields effects (`Send` an HTTP
request, `Sleep`) and receives their outcomes, and returns the `Response`. The sync shell drives
it with httpx and `time.sleep`, the async shell with an async transport and `asyncio.sleep`. All
decisions (which provider, what to record, what to raise) live here, once.

Stages, in order: tags (resolved by the shell, in the caller's context) → router (providers in
`LLM_PROVIDER_ORDER` that have a key and an adapter) → attempt → record. Later stages (dedupe
before the router, retry around the attempt, the breaker beside the router) slot in without
changing the shells.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass

from .config import Settings
from .errors import NoProviderAvailableError, ProviderError
from .observe.pricing import PriceTable, estimate_tokens
from .observe.recorder import CallContext, Recorder
from .providers import adapter_for
from .tags import ResolvedTags
from .types import ChatRequest, HttpReply, HttpRequest, ProviderReply, Response, Usage


@dataclass(frozen=True, slots=True)
class Send:
    """Effect: send this request and resume with an `HttpReply` or a transport `ProviderError`."""

    request: HttpRequest
    timeout_s: float
    provider: str


@dataclass(frozen=True, slots=True)
class Sleep:
    """Effect: wait this long, then resume with None."""

    seconds: float


Effect = Send | Sleep
Outcome = HttpReply | ProviderError | None
CallPlan = Generator[Effect, Outcome, Response]


class CallPipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        recorder: Recorder | None = None,
        prices: PriceTable | None = None,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.settings = settings
        self.recorder = recorder or Recorder(settings)
        self.prices = prices or PriceTable.load(settings.prices_path)
        self._monotonic = monotonic

    def run(
        self, request: ChatRequest, tags: ResolvedTags, *, provider: str | None = None
    ) -> CallPlan:
        ctx = CallContext.create(
            uuid.uuid4().hex, request, tags, log_prompts=self.settings.log_prompts
        )
        try:
            return (yield from self._run(ctx, request, provider))
        except (ProviderError, NoProviderAvailableError) as error:
            error.request_id = ctx.request_id
            raise

    def _run(self, ctx: CallContext, request: ChatRequest, provider: str | None) -> CallPlan:
        route, skipped = self._route(provider)
        if not route:
            raise NoProviderAvailableError(skipped)
        reasons = list(skipped)
        last_error: ProviderError | None = None
        for position, name in enumerate(route):
            try:
                return (yield from self._attempt(ctx, request, name, attempt=1))
            except ProviderError as error:
                last_error = error
                reasons.append((name, str(error)))
                if position + 1 < len(route):
                    self.recorder.fallback(
                        ctx,
                        from_provider=name,
                        to_provider=route[position + 1],
                        reason=error.error_type,
                    )
        assert last_error is not None
        if len(route) == 1:
            raise last_error  # one provider: its own typed error says the most
        raise NoProviderAvailableError(reasons) from last_error

    def _route(self, only: str | None) -> tuple[list[str], list[tuple[str, str]]]:
        """Providers to try, in order, and the ones skipped with the reason."""
        names = [only] if only else list(self.settings.provider_order)
        route: list[str] = []
        skipped: list[tuple[str, str]] = []
        for name in names:
            settings = self.settings.providers.get(name)
            if settings is None:
                skipped.append((name, "unknown provider"))
            elif adapter_for(name) is None:
                skipped.append((name, "not supported by this version of nexus_llm yet"))
            elif not settings.configured:
                skipped.append((name, "no API key configured"))
            else:
                route.append(name)
        return route, skipped

    def _attempt(
        self, ctx: CallContext, request: ChatRequest, name: str, *, attempt: int
    ) -> CallPlan:
        adapter = adapter_for(name)
        assert adapter is not None
        provider_settings = self.settings.providers[name]
        model = request.model or provider_settings.model
        http_request = adapter.build_request(request, provider_settings)
        started = self._monotonic()
        outcome = yield Send(http_request, provider_settings.timeout_s, name)
        try:
            if isinstance(outcome, ProviderError):
                raise outcome
            if not isinstance(outcome, HttpReply):
                raise TypeError(f"the shell answered Send with {type(outcome).__name__}")
            reply = adapter.parse_reply(outcome, model=model)
        except ProviderError as error:
            latency_ms = (self._monotonic() - started) * 1000
            self.recorder.failure(
                ctx, provider=name, model=model, error=error, latency_ms=latency_ms, attempt=attempt
            )
            raise
        latency_ms = (self._monotonic() - started) * 1000
        return self._succeed(ctx, request, name, model, reply, latency_ms, attempt)

    def _succeed(
        self,
        ctx: CallContext,
        request: ChatRequest,
        provider: str,
        model: str,
        reply: ProviderReply,
        latency_ms: float,
        attempt: int,
    ) -> Response:
        usage, approx = reply.usage, False
        if usage is None:
            # No usage block: estimate so the ledger still shows a cost, and say so.
            usage = Usage(
                input_tokens=estimate_tokens(request.prompt_text()),
                output_tokens=estimate_tokens(reply.text),
            )
            approx = True
        price = self.prices.price(model, usage)
        self.recorder.success(
            ctx,
            provider=provider,
            model=model,
            reply=reply,
            usage=usage,
            approx_tokens=approx,
            price=price,
            latency_ms=latency_ms,
            attempt=attempt,
        )
        return Response(
            text=reply.text,
            finish_reason=reply.finish_reason,
            provider=provider,
            model=model,
            response_id=reply.response_id,
            request_id=ctx.request_id,
            usage=usage,
            approx_tokens=approx,
            cost_usd=price.cost_usd,
            price_version=price.price_version,
            latency_ms=latency_ms,
            team=ctx.tags.team,
            project=ctx.tags.project,
            purpose=ctx.tags.purpose,
        )
