"""The public face of the emulator: the ``Emulator`` object and the blocking ``serve()``.

An ``Emulator`` owns one server (``_server``), one shared state (``_state``) and one handler per
provider; a new provider is one more handler in the ``providers`` tuple of ``Emulator.__init__``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType, TracebackType
from typing import Any, final

from ._anthropic_routes import AnthropicRoutes
from ._faults import Fault, FaultKind
from ._gemini_routes import GeminiRoutes
from ._glm_routes import GLMRoutes
from ._http import ProviderRoutes
from ._openai_routes import OpenAIRoutes
from ._server import EmulatorServer
from ._state import EmulatorState

DEFAULT_GEMINI_KEY = "emulator-gemini-key"

# Every emulated provider: its routes (built from its API key) and the path suffix of the base
# URL a client is configured with. One line per provider.
ROUTES: dict[str, tuple[Callable[[str], ProviderRoutes], str]] = {
    "gemini": (GeminiRoutes, ""),
    "anthropic": (AnthropicRoutes, ""),
    "openai": (OpenAIRoutes, "/v1"),
    "glm": (GLMRoutes, "/api/paas/v4"),
}


@final
class Emulator:
    """A local stand-in for the Gemini, OpenAI, Anthropic and GLM APIs, faults injected at run time.

    Use it in-process as ``with Emulator() as emu:`` (or ``Emulator().start()`` ... ``stop()``)
    and point a client at ``emu.base_url`` with ``emu.gemini_key``. It answers real HTTP/1.1 on
    a loopback port, so everything between the client and the socket is exercised too.

    Args:
        host: A loopback address (``127.0.0.1``, ``::1`` or ``localhost``); anything else is
            refused with ``ValueError``, since the emulator accepts a published dummy key.
        port: The port to listen on; 0 picks a free one (read it from ``port`` after start).
        gemini_key: The only Gemini API key accepted.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        gemini_key: str = DEFAULT_GEMINI_KEY,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        self._host = _loopback(host)
        self._keys = {name: f"emulator-{name}-key" for name in ROUTES}
        self._keys.update(keys or {})
        self._keys["gemini"] = (keys or {}).get("gemini", gemini_key)
        self._gemini_key = self._keys["gemini"]
        providers = tuple(make(self._keys[name]) for name, (make, _) in ROUTES.items())
        gemini = next(p for p in providers if isinstance(p, GeminiRoutes))
        self._state = EmulatorState([routes.name for routes in providers])
        # Paths nobody owns still get Google's envelope: Gemini is the emulator's first face.
        self._server = EmulatorServer(
            self._host, port, routes=providers, fallback=gemini.not_found, state=self._state
        )
        self._requested_port = port
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    def start(self) -> Emulator:
        """Start serving from a daemon thread; return ``self`` once the port is listening.

        Raises ``OSError`` naming the port if it cannot be bound, and ``RuntimeError`` if this
        emulator was started or stopped before (an emulator runs once).
        """
        with self._lock:
            if self._started or self._stopped:
                raise RuntimeError("an Emulator runs once; create a new one to start again")
            self._started = True
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, closing every connection (even held ones); safe to call repeatedly."""
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        self._server.stop()

    def __enter__(self) -> Emulator:
        """Start the emulator unless it is already running, and return it."""
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the emulator."""
        self.stop()

    @property
    def port(self) -> int:
        """The listening port; with ``port=0`` it is known only once ``start()`` returned."""
        if self._server.port:
            return self._server.port
        if self._requested_port:
            return self._requested_port
        raise RuntimeError("Emulator.port is known once start() has returned")

    @property
    def base_url(self) -> str:
        """The Gemini base URL, e.g. ``http://127.0.0.1:8765``; clients append ``/v1beta/...``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def gemini_key(self) -> str:
        """The Gemini API key the emulator accepts."""
        return self._gemini_key

    @property
    def providers(self) -> list[str]:
        """The providers this emulator speaks for."""
        return list(ROUTES)

    def key_for(self, provider: str) -> str:
        """The one API key the emulator accepts for `provider`."""
        return self._keys[self._state.check_provider(provider)]

    def base_url_for(self, provider: str) -> str:
        """The base URL a client of `provider` is configured with (its `*_BASE_URL`)."""
        return self.base_url + ROUTES[self._state.check_provider(provider)][1]

    def inject(
        self,
        provider: str,
        kind: FaultKind | str,
        *,
        times: int | None = None,
        retry_after_s: float = 2.0,
        delay_s: float = 1.0,
    ) -> Fault:
        """Make the next ``times`` requests to ``provider`` suffer ``kind`` (all, if ``None``).

        Faults queue per provider: a new one applies after those already injected run out.
        Raises ``ValueError`` for an unknown provider or kind, or out-of-range parameters.
        """
        return self._state.inject(
            provider, kind, times=times, retry_after_s=retry_after_s, delay_s=delay_s
        )

    def clear_faults(self, provider: str | None = None) -> None:
        """Remove the active faults of ``provider``, or of every provider when ``None``."""
        self._state.clear_faults(provider)

    def configure(self, provider: str, *, thoughts_tokens: int = 0, cached_tokens: int = 0) -> None:
        """Set the usage a successful reply reports beyond prompt and reply tokens.

        Each call replaces both knobs; 0 leaves the field out of the usage block, as the real
        API does. Cached tokens are clamped to the prompt, of which they are a part.
        """
        self._state.configure(
            provider, thoughts_tokens=thoughts_tokens, cached_tokens=cached_tokens
        )

    def request_count(self, provider: str | None = None) -> int:
        """Return provider requests received (faulted ones included, control calls not)."""
        return self._state.request_count(provider)

    def stats(self) -> dict[str, object]:
        """Return ``{"requests": {"gemini": n}, "faults": [active fault JSON, ...]}``."""
        return self._state.stats()

    def reset(self) -> None:
        """Clear faults, usage knobs and request counts."""
        self._state.reset()


def serve(
    host: str = "127.0.0.1", port: int = 8765, *, gemini_key: str = DEFAULT_GEMINI_KEY
) -> None:
    """Run an emulator in the foreground until SIGINT or SIGTERM, for ``nexus emulator``.

    Prints one line with the URL and key, then blocks; a signal ends it cleanly. Raises
    ``ValueError`` for a non-loopback host and ``OSError`` naming the port if it is taken.
    """
    emulator = Emulator(host, port, gemini_key=gemini_key)
    stop = threading.Event()
    with _stop_on_signals(stop):
        emulator.start()
        try:
            _announce(
                f"nexus emulator listening on {emulator.base_url} "
                f"(gemini key: {emulator.gemini_key}) — Ctrl-C to stop\n"
                + "\n".join(
                    f"  {name}: {emulator.base_url_for(name)} key {emulator.key_for(name)}"
                    for name in emulator.providers
                )
            )
            # A timed wait keeps the main thread returning to the interpreter, where the
            # signal handlers run.
            while not stop.wait(0.2):
                pass
        finally:
            emulator.stop()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: list[tuple[signal.Signals, Any]] = []
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # off the main thread only process exit stops us
                previous.append((signum, signal.signal(signum, handler)))
        yield
    finally:
        for signum, old in previous:
            if old is not None:  # None: a handler installed outside Python, not restorable
                signal.signal(signum, old)


def _announce(line: str) -> None:
    try:
        print(line, flush=True)
    except UnicodeEncodeError:  # a non-UTF-8 console cannot show the dash
        print(line.replace("—", "-"), flush=True)


def _loopback(host: str) -> str:
    # "localhost" could resolve to both ::1 and 127.0.0.1, binding two sockets (and with port 0,
    # two different ports), so it is pinned to one address.
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"refusing to bind the emulator to {host!r}: it only listens on loopback "
            "(127.0.0.1, ::1 or localhost)"
        )
    return host
