"""`Client` and `AsyncClient`: thin I/O shells that drive the one `CallPipeline`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TypedDict, Unpack

import httpx

from .config import Settings
from .errors import ProviderError
from .pipeline import CallOptions, CallPipeline, CallPlan, Outcome, Send, Sleep
from .sync_transports import SyncBackend, make_sync_sender
from .tagging import resolve_tags
from .types import ChatRequest, HttpReply, Message, Response

if TYPE_CHECKING:
    from .streams import AsyncStreamingResponse, StreamingResponse, StreamOutcome


def build_chat_request(
    prompt: str | None,
    *,
    messages: Sequence[Message | tuple[str, str]] | None,
    system: str | None,
    model: str | None,
    temperature: float | None,
    max_tokens: int | None,
    json_mode: bool,
) -> ChatRequest:
    """Validate the caller's arguments into a `ChatRequest` (ValueError names the argument)."""
    if (prompt is None) == (messages is None):
        raise ValueError("pass exactly one of prompt= or messages=")
    if prompt is not None:
        turns: tuple[Message, ...] = (Message("user", prompt),)
    else:
        turns = tuple(_message(m) for m in messages or ())
        if not turns:
            raise ValueError("messages= must hold at least one message")
    if temperature is not None and not 0.0 <= temperature <= 2.0:
        raise ValueError(f"temperature={temperature!r} is invalid: expected 0.0 to 2.0")
    if max_tokens is not None and max_tokens <= 0:
        raise ValueError(f"max_tokens={max_tokens!r} is invalid: expected a whole number > 0")
    return ChatRequest(
        messages=turns,
        system=system,
        model=model,
        temperature=temperature,
        max_tokens=max_tokens,
        json_mode=json_mode,
    )


def _message(item: Message | tuple[str, str]) -> Message:
    if isinstance(item, Message):
        return item
    role, text = item
    if role not in ("user", "assistant"):
        raise ValueError(f"message role {role!r} is invalid: expected 'user' or 'assistant'")
    return Message(role, text)  # type: ignore[arg-type]


class StreamOptions(TypedDict, total=False):
    """`generate_stream`'s keyword arguments: `generate`'s, less dedupe."""

    purpose: str | None
    team: str | None
    project: str | None
    provider: str | None
    messages: Sequence[Message | tuple[str, str]] | None
    system: str | None
    model: str | None
    temperature: float | None
    max_tokens: int | None
    json_mode: bool


def _stream_outcome(options: Mapping[str, object]) -> StreamOutcome:
    """Where a stream's Response will land; first, refuse what `generate_stream` does not take
    (a TypeError naming it, not the private method the options are passed on to)."""
    from .streams import StreamOutcome

    unknown = sorted(options.keys() - StreamOptions.__annotations__.keys())
    if unknown:
        why = " (streams skip dedupe)" if {"dedupe", "dedupe_ttl_s"} & set(unknown) else ""
        raise TypeError(
            f"generate_stream() got unexpected keyword argument(s) {', '.join(unknown)}{why}; "
            f"it takes {', '.join(StreamOptions.__annotations__)}"
        )
    return StreamOutcome()


class _ClientBase:
    def __init__(self, settings: Settings | None, pipeline: CallPipeline | None) -> None:
        self.settings = settings or (pipeline.settings if pipeline else Settings.from_env())
        self.pipeline = pipeline or CallPipeline(self.settings)

    def _plan(
        self,
        prompt: str | None,
        *,
        purpose: str | None = None,
        team: str | None = None,
        project: str | None = None,
        provider: str | None = None,
        messages: Sequence[Message | tuple[str, str]] | None = None,
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        dedupe: bool | None = None,
        dedupe_ttl_s: float | None = None,
        stream: bool = False,
        on_cancel: Callable[[Response], None] | None = None,
    ) -> CallPlan:
        request = build_chat_request(
            prompt,
            messages=messages,
            system=system,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_mode=json_mode,
        )
        # Tags resolve here, in the caller's context, before any await or thread hop.
        tags = resolve_tags(self.settings, team=team, project=project, purpose=purpose)
        if dedupe_ttl_s is not None and dedupe_ttl_s < 0:
            raise ValueError(f"dedupe_ttl_s={dedupe_ttl_s!r} is invalid: expected seconds >= 0")
        options = CallOptions(provider=provider, dedupe=dedupe, dedupe_ttl_s=dedupe_ttl_s)
        if stream:
            return self.pipeline.run_stream(request, tags, options, on_cancel=on_cancel)
        return self.pipeline.run(request, tags, options)


class Client(_ClientBase):
    """The synchronous LLM client. Thread-safe; one instance per process is enough.

    Args:
        settings: defaults to `Settings.from_env()`.
        transport: an httpx transport, e.g. `httpx.MockTransport` in tests (implies httpx).
        pipeline: a pre-built pipeline (to inject a store, clocks or a recorder).
        sleep: how to wait between retries (tests pass a fake clock's sleep).
        http_backend: ``auto`` sends over urllib3 when it is installed (the ``fast`` extra), no
            `transport` is given and no proxy variable is set, else over httpx; ``urllib3`` or
            ``httpx`` force one (tests that mock HTTP with respx need ``httpx``).

    `generate(..., dedupe=False)` skips dedupe for one call; `dedupe_ttl_s=` sets its TTL.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        pipeline: CallPipeline | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http_backend: SyncBackend = "auto",
    ) -> None:
        super().__init__(settings, pipeline)
        self._sleep = sleep
        self._sender = make_sync_sender(
            http_backend, timeout_s=self.settings.timeout_s, transport=transport
        )
        self._send = self._sender.send

    def generate(
        self,
        prompt: str | None = None,
        *,
        purpose: str | None = None,
        team: str | None = None,
        project: str | None = None,
        provider: str | None = None,
        messages: Sequence[Message | tuple[str, str]] | None = None,
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        dedupe: bool | None = None,
        dedupe_ttl_s: float | None = None,
    ) -> Response:
        """Ask the first available provider; record the call; return its `Response`."""
        plan = self._plan(
            prompt,
            purpose=purpose,
            team=team,
            project=project,
            provider=provider,
            messages=messages,
            system=system,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_mode=json_mode,
            dedupe=dedupe,
            dedupe_ttl_s=dedupe_ttl_s,
        )
        outcome: Outcome = None
        try:
            while True:
                effect = plan.send(outcome)
                if isinstance(effect, Send):
                    outcome = self._send(effect)
                elif isinstance(effect, Sleep):
                    self._sleep(effect.seconds)
                    outcome = None
                else:
                    raise TypeError(f"a unary call yielded {type(effect).__name__}")
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def generate_stream(
        self, prompt: str | None = None, **options: Unpack[StreamOptions]
    ) -> StreamingResponse:
        """Stream the answer: iterate the returned object for text as it arrives, then read
        `.response` (usage, cost). Takes `generate`'s arguments but dedupe (streams skip it).
        Use it in a `with` block so an early exit closes it."""
        from .streams import StreamingResponse

        outcome = _stream_outcome(options)
        plan = self._plan(prompt, stream=True, on_cancel=outcome.keep, **options)
        return StreamingResponse(plan, self, outcome)

    def close(self) -> None:
        self._sender.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """The asyncio LLM client: the same pipeline as `Client`, awaited.

    Args:
        settings: defaults to `Settings.from_env()`.
        transport: an httpx async transport, e.g. `httpx.MockTransport` in tests (implies httpx).
        pipeline: a pre-built pipeline (to inject a store, clocks or a recorder).
        max_connections: the connection pool's size.
        sleep: how to wait between retries.
        http_backend: ``auto`` sends over aiohttp when it is installed (the ``fast`` extra), no
            `transport` is given and no proxy variable is set, else over httpx; ``aiohttp`` or
            ``httpx`` force one.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        pipeline: CallPipeline | None = None,
        max_connections: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        http_backend: Literal["auto", "aiohttp", "httpx"] = "auto",
    ) -> None:
        from .transports import make_sender  # imports this module: bound late

        super().__init__(settings, pipeline)
        self._sleep = sleep
        self._sender = make_sender(
            http_backend,
            timeout_s=self.settings.timeout_s,
            max_connections=max_connections,
            transport=transport,
        )

    async def generate(
        self,
        prompt: str | None = None,
        *,
        purpose: str | None = None,
        team: str | None = None,
        project: str | None = None,
        provider: str | None = None,
        messages: Sequence[Message | tuple[str, str]] | None = None,
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        dedupe: bool | None = None,
        dedupe_ttl_s: float | None = None,
    ) -> Response:
        """Ask the first available provider; record the call; return its `Response`."""
        plan = self._plan(
            prompt,
            purpose=purpose,
            team=team,
            project=project,
            provider=provider,
            messages=messages,
            system=system,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_mode=json_mode,
            dedupe=dedupe,
            dedupe_ttl_s=dedupe_ttl_s,
        )
        outcome: Outcome = None
        try:
            while True:
                effect = plan.send(outcome)
                if isinstance(effect, Send):
                    outcome = await self._send(effect)
                elif isinstance(effect, Sleep):
                    await self._sleep(effect.seconds)
                    outcome = None
                else:
                    raise TypeError(f"a unary call yielded {type(effect).__name__}")
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def generate_stream(
        self, prompt: str | None = None, **options: Unpack[StreamOptions]
    ) -> AsyncStreamingResponse:
        """Stream the answer: `async for` the returned object, then read `.response`. Takes
        `generate`'s arguments but dedupe. Use it in an `async with` block so an early exit
        closes it."""
        from .streams import AsyncStreamingResponse

        outcome = _stream_outcome(options)
        plan = self._plan(prompt, stream=True, on_cancel=outcome.keep, **options)
        return AsyncStreamingResponse(plan, self, outcome)

    async def _send(self, effect: Send) -> HttpReply | ProviderError:
        return await self._sender.send(effect)

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
