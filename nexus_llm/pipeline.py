"""The call pipeline of DESIGN §2 as a sans-I/O generator, shared by `Client` and `AsyncClient`.

`CallPipeline.run()` is a generator that *describes* a call: it yields effects (`Send` an HTTP
request, `Sleep`) and receives their outcomes, and returns the `Response`. The sync shell drives
it with httpx and `time.sleep`, the async shell with an async transport and `asyncio.sleep`. All
decisions (which provider, when to retry, what to record, what to raise) live here, once.

Stages, in order: tags (resolved by the shell, in the caller's context) → dedupe (a cached
answer, or wait for an identical call in flight) → router (providers in `LLM_PROVIDER_ORDER`
with a key, an adapter and a breaker that admits the call; failover to the next) → retry
(backoff with full jitter, bounded by attempts and the call deadline) → attempt → record.

State-store calls (breaker, dedupe) are made inline: they are local file or short-timeout
Redis operations, and a Redis outage falls back to the local store after one timeout.
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace

from .config import Settings
from .errors import ConfigError, MalformedResponseError, NoProviderAvailableError, ProviderError
from .observe.pricing import PriceTable, estimate_tokens
from .observe.recorder import CallContext, Recorder
from .protect.backoff import RetryPolicy
from .protect.breaker import BreakerConfig, CircuitBreaker, counts_against_breaker
from .protect.dedupe import CachedAnswer, DedupeCache, dedupe_key
from .providers import adapter_for
from .providers.base import StreamParser
from .providers.sse import SSEDecoder
from .state import StateStore
from .tagging import ResolvedTags
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


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Effect: send this request for a streamed answer. Resume with `StreamOpened` when the
    answer is a 200 whose body is still to be read, with the whole `HttpReply` for any other
    status, or with a transport `ProviderError`."""

    request: HttpRequest
    timeout_s: float
    provider: str


@dataclass(frozen=True, slots=True)
class StreamOpened:
    status: int
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ReadStream:
    """Effect: the next bytes of the open stream; resume with them (b"" at its end) or with a
    transport `ProviderError`. The shell closes the stream at its end or when the plan ends."""


@dataclass(frozen=True, slots=True)
class Emit:
    """Effect: hand this text to the caller of a stream; resume with None."""

    text: str


Effect = Send | Sleep | OpenStream | ReadStream | Emit
Outcome = HttpReply | ProviderError | StreamOpened | bytes | None
CallPlan = Generator[Effect, Outcome, Response]
_DedupePlan = Generator[Effect, Outcome, "Response | bytes | None"]

_Attempt = Callable[..., CallPlan]  # (ctx, request, provider, *, attempt, budget_s) -> plan
_POLL_FIRST_S, _POLL_MAX_S = 0.02, 0.25  # how often a waiter looks for the in-flight answer


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call switches (None: the settings decide)."""

    provider: str | None = None
    dedupe: bool | None = None
    dedupe_ttl_s: float | None = None


class CallPipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        recorder: Recorder | None = None,
        prices: PriceTable | None = None,
        store: StateStore | None = None,
        monotonic: Callable[[], float] = time.perf_counter,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.recorder = recorder or Recorder(settings)
        self.prices = prices or PriceTable.load(settings.prices_path)
        self.store = store or self._open_store()
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        knobs = settings.protection
        self.retry = RetryPolicy(
            max_attempts=knobs.retry_max_attempts,
            base_s=knobs.retry_base_s,
            max_delay_s=knobs.retry_max_delay_s,
            deadline_s=knobs.call_deadline_s,
        )
        breaker_config = BreakerConfig(
            failure_threshold=knobs.breaker_failure_threshold,
            failure_rate=knobs.breaker_failure_rate,
            min_calls=knobs.breaker_min_calls,
            window_s=knobs.breaker_window_s,
            cooldown_s=knobs.breaker_cooldown_s,
            half_open_probes=knobs.breaker_half_open_probes,
            probe_timeout_s=knobs.call_deadline_s,
        )
        self.breakers = {
            name: CircuitBreaker(
                self.store,
                name,
                breaker_config,
                on_transition=self._breaker_sink(name),
                clock=clock,
            )
            for name in settings.providers
        }
        self.dedupe = DedupeCache(self.store)

    def _open_store(self) -> StateStore:
        from .state.factory import open_store

        knobs = self.settings.protection
        try:
            return open_store(
                redis_url=knobs.redis_url.reveal() if knobs.redis_url else None,
                state_path=self.settings.state_path,
                redis_timeout_s=knobs.redis_timeout_s,
                on_degraded=self.recorder.state_degraded,
                on_recovered=self.recorder.state_recovered,
            )
        except ValueError:
            raise ConfigError("REDIS_URL", "<redacted>", "a URL redis-py can parse") from None

    def _breaker_sink(self, provider: str) -> Callable[[str, dict[str, object]], None]:
        def sink(event: str, fields: dict[str, object]) -> None:
            self.recorder.breaker_transition(provider, event, fields)

        return sink

    def run(
        self, request: ChatRequest, tags: ResolvedTags, options: CallOptions | None = None
    ) -> CallPlan:
        options = options or CallOptions()
        ctx = CallContext.create(
            uuid.uuid4().hex, request, tags, log_prompts=self.settings.log_prompts
        )
        try:
            return (yield from self._run(ctx, request, options))
        except (ProviderError, NoProviderAvailableError) as error:
            error.request_id = ctx.request_id
            raise

    def run_stream(
        self,
        request: ChatRequest,
        tags: ResolvedTags,
        options: CallOptions | None = None,
        *,
        on_cancel: Callable[[Response], None] | None = None,
    ) -> CallPlan:
        """A streamed call: `Emit` effects carry the text as it arrives; returns the `Response`.

        Routing, the breaker, retries and failover are the unary call's, until the first text
        reaches the caller; after that an error ends the call (it is recorded, and the output
        generated so far is billed). Streams skip dedupe: a stream is watched as it is written.
        The ledger line is written once, at the end, with the provider's usage. When the caller
        stops reading, `on_cancel` receives the `cancelled` Response that was recorded.
        """
        options = options or CallOptions()
        ctx = CallContext.create(
            uuid.uuid4().hex, request, tags, log_prompts=self.settings.log_prompts
        )
        route, skipped = self._route(options.provider)
        try:
            if not route:
                raise NoProviderAvailableError(skipped)
            return (
                yield from self._failover(
                    ctx,
                    request,
                    route,
                    skipped,
                    attempt=functools.partial(self._stream_attempt, on_cancel=on_cancel),
                )
            )
        except (ProviderError, NoProviderAvailableError) as error:
            error.request_id = ctx.request_id
            raise

    def _run(self, ctx: CallContext, request: ChatRequest, options: CallOptions) -> CallPlan:
        route, skipped = self._route(options.provider)
        if not route:
            raise NoProviderAvailableError(skipped)
        knobs = self.settings.protection
        ttl = knobs.dedupe_ttl_s if options.dedupe_ttl_s is None else options.dedupe_ttl_s
        enabled = knobs.dedupe_enabled if options.dedupe is None else options.dedupe
        if not enabled or ttl <= 0:
            return (yield from self._failover(ctx, request, route, skipped))
        model = request.model or self.settings.providers[route[0]].model
        key = dedupe_key(request, model, ctx.tags)
        claimed = yield from self._dedupe_or_claim(ctx, key)
        if isinstance(claimed, Response):
            return claimed
        try:
            response = yield from self._failover(ctx, request, route, skipped)
        except BaseException:
            if claimed is not None:
                self.dedupe.release(key, claimed)  # errors are never cached; waiters retry
            raise
        if claimed is not None:
            self.dedupe.fulfil(key, _cached(response), ttl_s=ttl, token=claimed)
        return response

    def _dedupe_or_claim(self, ctx: CallContext, key: str) -> _DedupePlan:
        """A hit → its Response; the right to call → the lock token; gave up waiting → None."""
        waited, poll = 0.0, _POLL_FIRST_S
        lock_ttl = self.settings.protection.call_deadline_s + 5.0
        while True:
            hit = self.dedupe.lookup(key)
            if hit is not None:
                return self._dedupe_hit(ctx, hit, kind="cache" if waited == 0 else "in_flight")
            token = self.dedupe.claim(key, ttl_s=lock_ttl)
            if token is not None:
                # The first caller may have answered and let go between our lookup and claim.
                hit = self.dedupe.lookup(key)
                if hit is None:
                    return token
                self.dedupe.release(key, token)
                return self._dedupe_hit(ctx, hit, kind="cache" if waited == 0 else "in_flight")
            if waited >= self.settings.protection.dedupe_wait_s:
                return None  # the first caller is too slow: ask the provider ourselves
            yield Sleep(poll)
            waited += poll
            poll = min(poll * 1.5, _POLL_MAX_S)

    def _dedupe_hit(self, ctx: CallContext, hit: CachedAnswer, *, kind: str) -> Response:
        self.recorder.dedupe_hit(ctx, hit, kind=kind)
        return Response(
            text=hit.text,
            finish_reason=hit.finish_reason,
            provider=hit.provider,
            model=hit.model,
            response_id=hit.response_id,
            request_id=ctx.request_id,
            usage=hit.usage,
            approx_tokens=hit.approx_tokens,
            cost_usd=0.0,
            price_version=hit.price_version,
            latency_ms=0.0,
            team=ctx.tags.team,
            project=ctx.tags.project,
            purpose=ctx.tags.purpose,
            dedupe_hit=True,
            extra={"original_request_id": hit.request_id, "saved_cost_usd": hit.cost_usd},
        )

    def _failover(
        self,
        ctx: CallContext,
        request: ChatRequest,
        route: list[str],
        skipped: list[tuple[str, str]],
        *,
        attempt: _Attempt | None = None,
    ) -> CallPlan:
        attempt = attempt or self._attempt
        reasons = list(skipped)
        last_error: ProviderError | None = None
        started = self._monotonic()
        for position, name in enumerate(route):
            following = route[position + 1] if position + 1 < len(route) else None
            if self._monotonic() - started >= self.retry.deadline_s:
                reasons.append((name, "not tried: the call deadline had passed"))
                continue
            breaker = self.breakers[name]
            admission = breaker.admit()
            if admission.kind == "denied":
                reasons.append((name, admission.why))
                if following:
                    self.recorder.fallback(
                        ctx, from_provider=name, to_provider=following, reason="breaker_open"
                    )
                continue
            try:
                response = yield from self._with_retries(
                    ctx, request, name, started=started, attempt=attempt
                )
            except ProviderError as error:
                last_error = error
                reasons.append((name, str(error)))
                if counts_against_breaker(error):
                    breaker.record_failure(error.error_type)
                elif not admission.clean:
                    breaker.record_success()  # it answered: the request, not the provider, failed
                if error.after_output:
                    raise  # the caller has seen this provider's text: no one else may go on
                if following:
                    self.recorder.fallback(
                        ctx, from_provider=name, to_provider=following, reason=error.error_type
                    )
                continue
            if not admission.clean:
                breaker.record_success()
            return response
        if last_error is not None and len(route) == 1:
            raise last_error  # one provider: its own typed error says the most
        raise NoProviderAvailableError(reasons) from last_error

    def _with_retries(
        self,
        ctx: CallContext,
        request: ChatRequest,
        name: str,
        *,
        started: float,
        attempt: _Attempt,
    ) -> CallPlan:
        """Attempts at one provider; `started` is when the call began (the deadline is the
        call's, shared by every provider it fails over to)."""
        number = 1
        while True:
            remaining = self.retry.deadline_s - (self._monotonic() - started)
            try:
                return (
                    yield from attempt(
                        ctx, request, name, attempt=number, budget_s=max(remaining, 0.001)
                    )
                )
            except ProviderError as error:
                if error.after_output:
                    raise
                elapsed = self._monotonic() - started
                wait = self.retry.next_wait(error, attempt=number, elapsed_s=elapsed, rng=self._rng)
                if wait is None:
                    raise
                self.recorder.retry(ctx, provider=name, attempt=number, wait_s=wait, error=error)
                yield Sleep(wait)
                number += 1

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
        self, ctx: CallContext, request: ChatRequest, name: str, *, attempt: int, budget_s: float
    ) -> CallPlan:
        adapter = adapter_for(name)
        assert adapter is not None
        provider_settings = self.settings.providers[name]
        model = request.model or provider_settings.model
        http_request = adapter.build_request(request, provider_settings)
        started = self._monotonic()
        # One attempt never outlives the call's deadline.
        timeout_s = min(provider_settings.timeout_s, budget_s)
        outcome = yield Send(http_request, timeout_s, name)
        try:
            if isinstance(outcome, ProviderError):
                raise outcome
            if not isinstance(outcome, HttpReply):
                raise TypeError(f"the shell answered Send with {type(outcome).__name__}")
            reply = adapter.parse_reply(outcome, model=model)
        except ProviderError as error:
            self._attempt_failed(ctx, request, name, model, error, started, attempt)
            raise
        latency_ms = (self._monotonic() - started) * 1000
        return self._succeed(ctx, request, name, model, reply, latency_ms, attempt)

    def _attempt_failed(
        self,
        ctx: CallContext,
        request: ChatRequest,
        name: str,
        model: str,
        error: ProviderError,
        started: float,
        attempt: int,
    ) -> None:
        """Scrub and record one failed attempt (unary or streamed)."""
        # Providers echo headers and prompts in their errors; neither may reach a log.
        api_key = self.settings.providers[name].api_key
        key = api_key.reveal() if api_key else ""
        error.redact([key], [request.prompt_text(), *(m.text for m in request.messages)])
        latency_ms = (self._monotonic() - started) * 1000
        self.recorder.failure(
            ctx, provider=name, model=model, error=error, latency_ms=latency_ms, attempt=attempt
        )

    def _stream_attempt(
        self,
        ctx: CallContext,
        request: ChatRequest,
        name: str,
        *,
        attempt: int,
        budget_s: float,
        on_cancel: Callable[[Response], None] | None = None,
    ) -> CallPlan:
        adapter = adapter_for(name)
        assert adapter is not None
        provider_settings = self.settings.providers[name]
        model = request.model or provider_settings.model
        http_request = adapter.build_stream_request(request, provider_settings)
        started = self._monotonic()
        timeout_s = min(provider_settings.timeout_s, budget_s)
        emitted: list[str] = []
        parser: StreamParser | None = None
        try:
            opened = yield OpenStream(http_request, timeout_s, name)
            if isinstance(opened, ProviderError):
                raise opened
            if isinstance(opened, HttpReply):
                adapter.parse_reply(opened, model=model)  # an error status raises here
                raise MalformedResponseError(
                    f"HTTP {opened.status} without an event stream", provider=name
                )
            if not isinstance(opened, StreamOpened):
                raise TypeError(f"the shell answered OpenStream with {type(opened).__name__}")
            decoder = SSEDecoder(provider=name)
            parser = adapter.new_stream_parser(model=model)
            while True:
                chunk = yield ReadStream()
                if isinstance(chunk, ProviderError):
                    raise chunk
                if not isinstance(chunk, bytes):
                    raise TypeError(f"the shell answered ReadStream with {type(chunk).__name__}")
                for event in decoder.feed(chunk) if chunk else decoder.flush():
                    for text in parser.feed(event):
                        emitted.append(text)
                        yield Emit(text)
                if not chunk:
                    break
            reply = parser.finish()
        except ProviderError as error:
            self._attempt_failed(ctx, request, name, model, error, started, attempt)
            if emitted:
                error.after_output = True
                usage = self._partial_usage(request, "".join(emitted), parser)
                price = self.prices.price(model, usage)
                self.recorder.bill(
                    ctx, provider=name, model=model, usage=usage, approx_tokens=True, price=price
                )
            raise
        except GeneratorExit:
            # The caller stopped reading: what was generated so far is still billed, once.
            text = "".join(emitted)
            partial = ProviderReply(text, "cancelled", model, None, None)
            latency_ms = (self._monotonic() - started) * 1000
            cancelled = self._succeed(
                ctx,
                request,
                name,
                model,
                partial,
                latency_ms,
                attempt,
                estimated=self._partial_usage(request, text, parser),
            )
            if on_cancel is not None:
                on_cancel(cancelled)
            raise
        latency_ms = (self._monotonic() - started) * 1000
        return self._succeed(ctx, request, name, model, reply, latency_ms, attempt)

    @staticmethod
    def _partial_usage(request: ChatRequest, text: str, parser: StreamParser | None) -> Usage:
        """The usage of a stream that ended early: the provider's prompt-side counts when it had
        sent them, the output estimated from the text the caller received (never less than the
        provider's own running count)."""
        known = parser.usage_so_far() if parser is not None else None
        output = estimate_tokens(text)
        if known is None or not known.input_tokens:
            return Usage(input_tokens=estimate_tokens(request.prompt_text()), output_tokens=output)
        return replace(known, output_tokens=max(known.output_tokens, output))

    def _succeed(
        self,
        ctx: CallContext,
        request: ChatRequest,
        provider: str,
        model: str,
        reply: ProviderReply,
        latency_ms: float,
        attempt: int,
        *,
        estimated: Usage | None = None,
    ) -> Response:
        usage, approx = reply.usage, False
        if estimated is not None:
            usage, approx = estimated, True  # a cut-short stream: partly the provider's counts
        elif usage is None:
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


def _cached(response: Response) -> CachedAnswer:
    return CachedAnswer(
        text=response.text,
        finish_reason=response.finish_reason,
        provider=response.provider,
        model=response.model,
        response_id=response.response_id,
        request_id=response.request_id,
        usage=response.usage,
        approx_tokens=response.approx_tokens,
        cost_usd=response.cost_usd,
        price_version=response.price_version,
    )
