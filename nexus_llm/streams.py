"""Streamed answers: the objects `generate_stream` returns, driving the pipeline's stream plan.

    with client.generate_stream("Explain SLOs", purpose="docs") as stream:
        for text in stream:
            print(text, end="", flush=True)
    print(stream.response.usage)

    async with aclient.generate_stream("Explain SLOs", purpose="docs") as stream:
        async for text in stream:
            ...

The pipeline decides everything (which provider, retries before the first text, what to
record); these shells only perform its effects: open the HTTP stream, read its bytes, hand each
text to the caller. Leaving the loop early (or closing the stream) ends the call: the provider's
connection is closed, and the text generated so far is recorded and billed, once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from .errors import ProviderError
from .pipeline import CallPlan, Emit, OpenStream, Outcome, ReadStream, Send, Sleep
from .types import Response

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .sync_transports import SyncStreamHandle


class AsyncStreamHandle(Protocol):
    """An open streamed answer in an async sender."""

    async def read(self) -> bytes | ProviderError:
        """The next bytes (b"" at the end) or the transport error that ended the stream."""
        ...

    async def aclose(self) -> None: ...


class StreamOutcome:
    """Where a driver leaves the call's `Response`: at the end of the stream, or the
    `cancelled` one when the caller left early. The drivers hold this, never the stream
    object, so a stream the caller drops is closed at once by reference counting — not later
    by the cycle collector, which may run while the HTTP pool holds its lock in this thread."""

    __slots__ = ("response",)

    def __init__(self) -> None:
        self.response: Response | None = None

    def keep(self, response: Response) -> None:
        self.response = response


class _StreamBase:
    """What both stream objects keep: the plan they drive and where its `Response` lands."""

    def __init__(self, plan: CallPlan, outcome: StreamOutcome | None = None) -> None:
        self._plan = plan
        self._outcome = outcome or StreamOutcome()

    @property
    def response(self) -> Response:
        """The whole call — text, usage, cost — once the stream has ended; after an early
        exit, the `cancelled` call as it was recorded (estimated tokens)."""
        if self._outcome.response is None:
            raise RuntimeError("the stream has not ended yet: iterate it to the end first")
        return self._outcome.response


class StreamingResponse(_StreamBase):
    """A streamed answer for `Client`: iterate for the text; `.response` once it has ended."""

    def __init__(
        self, plan: CallPlan, client: Client, outcome: StreamOutcome | None = None
    ) -> None:
        super().__init__(plan, outcome)
        self._client = client
        self._driver: Generator[str, None, None] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._driver is None:
            self._driver = _drive(self._plan, self._client, self._outcome)
        return self._driver

    def close(self) -> None:
        """Stop reading: closes the provider's connection and records what was received."""
        if self._driver is not None:
            self._driver.close()
        self._plan.close()

    def __enter__(self) -> StreamingResponse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _drive(
    plan: CallPlan, client: Client, outcome_box: StreamOutcome
) -> Generator[str, None, None]:
    handle: SyncStreamHandle | None = None
    outcome: Outcome = None
    sender = client._sender
    try:
        while True:
            try:
                effect = plan.send(outcome)
            except StopIteration as done:
                outcome_box.response = done.value
                return
            outcome = None
            if isinstance(effect, Emit):
                yield effect.text
            elif isinstance(effect, ReadStream):
                outcome = handle.read() if handle is not None else b""
                if outcome == b"" or isinstance(outcome, ProviderError):
                    _close(handle)
                    handle = None
            elif isinstance(effect, OpenStream):
                outcome, handle = sender.open_stream(effect)
            elif isinstance(effect, Send):
                outcome = sender.send(effect)
            elif isinstance(effect, Sleep):
                client._sleep(effect.seconds)
    finally:
        _close(handle)
        plan.close()


def _close(handle: SyncStreamHandle | None) -> None:
    if handle is not None:
        handle.close()


class AsyncStreamingResponse(_StreamBase):
    """A streamed answer for `AsyncClient`: `async for` the text; `.response` once ended."""

    def __init__(
        self, plan: CallPlan, client: AsyncClient, outcome: StreamOutcome | None = None
    ) -> None:
        super().__init__(plan, outcome)
        self._client = client
        self._driver: AsyncGenerator[str, None] | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        if self._driver is None:
            self._driver = _adrive(self._plan, self._client, self._outcome)
        return self._driver

    async def aclose(self) -> None:
        if self._driver is not None:
            await self._driver.aclose()
        self._plan.close()

    async def __aenter__(self) -> AsyncStreamingResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _adrive(
    plan: CallPlan, client: AsyncClient, outcome_box: StreamOutcome
) -> AsyncGenerator[str, None]:
    handle: AsyncStreamHandle | None = None
    outcome: Outcome = None
    sender = client._sender
    sleep: Callable[[float], Awaitable[None]] = client._sleep
    try:
        while True:
            try:
                effect = plan.send(outcome)
            except StopIteration as done:
                outcome_box.response = done.value
                return
            outcome = None
            if isinstance(effect, Emit):
                yield effect.text
            elif isinstance(effect, ReadStream):
                outcome = await handle.read() if handle is not None else b""
                if outcome == b"" or isinstance(outcome, ProviderError):
                    await _aclose(handle)
                    handle = None
            elif isinstance(effect, OpenStream):
                outcome, handle = await sender.open_stream(effect)
            elif isinstance(effect, Send):
                outcome = await sender.send(effect)
            elif isinstance(effect, Sleep):
                await sleep(effect.seconds)
    finally:
        await _aclose(handle)
        plan.close()


async def _aclose(handle: AsyncStreamHandle | None) -> None:
    if handle is not None:
        await handle.aclose()
