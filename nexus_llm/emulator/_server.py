"""The HTTP/1.1 server core: an asyncio loop on a daemon thread, speaking through ``h11``.

``h11`` is only a state machine, so this module decides every byte that leaves the socket; that
is what lets faults stall before the first byte, hold a connection forever, reset it, or stop a
body short of its ``Content-Length``, and what lets a stream go out one flushed chunk per event
(or stop without its last chunk). The core routes each request to the control endpoint or
to the provider that owns its path, applies the wire-level faults, and leaves the rest to the
provider's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, final
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

from ._control import PREFIX as CONTROL_PREFIX
from ._control import handle_control
from ._faults import Fault, FaultKind
from ._http import Answer, ProviderRoutes, Reply, Request, StreamReply, json_reply
from ._state import EmulatorState

_log = logging.getLogger("nexus_llm.emulator")

_READ_CHUNK = 65536
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_SERVER_HEADER = "nexus-emulator"
_PIECE_GAP_S = 0.001
_REASONS = {status.value: status.phrase for status in HTTPStatus}


@final
class EmulatorServer:
    """Serves HTTP/1.1 on one loopback address from a daemon thread with its own event loop.

    Args:
        host: An address already checked to be loopback.
        port: The port to bind, 0 for any free one.
        routes: The emulated providers, asked in order which one owns a request's path.
        fallback: Answers paths that neither a provider nor the control endpoint owns.
        state: Counts, knobs and faults shared with the controlling threads.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        routes: Sequence[ProviderRoutes],
        fallback: Callable[[Request], Reply],
        state: EmulatorState,
    ) -> None:
        self._host = host
        self._port = port
        self._routes = tuple(routes)
        self._fallback = fallback
        self._state = state
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._startup_error: OSError | None = None
        self._bound_port = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        """The port actually bound, or 0 before ``start()``."""
        return self._bound_port

    def start(self) -> int:
        """Bind and serve from a daemon thread; return the bound port once it is listening.

        Raises ``OSError`` naming the address when it cannot be bound, e.g. the port is taken.
        """
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(),), name="nexus-emulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("the nexus emulator did not start listening within 10 s")
        if self._startup_error is not None:
            self._thread.join()
            error = self._startup_error
            raise OSError(
                error.errno,
                f"nexus emulator cannot listen on {self._host}:{self._port}: "
                f"{error.strerror or error} (is something else using port {self._port}?)",
            ) from error
        return self._bound_port

    def stop(self) -> None:
        """Close the listener and every connection, then join the thread; safe to repeat."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            # The loop may already be gone if it stopped by itself; nothing left to wake then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread.join(_STOP_TIMEOUT_S)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await asyncio.start_server(self._connection, self._host, self._port)
        except OSError as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._bound_port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            # Cancelling wakes every connection, including ones a ``timeout`` fault is holding
            # and ones sleeping for ``slow``; each then closes its own transport.
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while await self._exchange(conn, reader, writer):
                conn.start_next_cycle()
        except (OSError, h11.ProtocolError):
            pass  # the client vanished or broke HTTP mid-exchange: nobody is left to tell
        except asyncio.CancelledError:
            # Python 3.11's stream callback calls ``task.exception()`` on the finished task,
            # which raises (and logs a traceback) if the task ended cancelled, so end quietly.
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; return whether the connection stays open for another."""
        request = await self._read_request(conn, reader, writer)
        if request is None:
            return False
        reply: Answer
        if request.path.startswith(CONTROL_PREFIX):
            reply = handle_control(request, self._state)
        else:
            routes = next((r for r in self._routes if r.owns(request.path)), None)
            if routes is None:
                reply = self._fallback(request)
            else:
                fault = self._state.begin_request(routes.name)
                kind = fault.kind if fault is not None else None
                if kind is FaultKind.TIMEOUT:
                    await _hold(reader)
                    return False
                if kind is FaultKind.RESET:
                    _reset(writer)
                    return False
                if fault is not None and kind is FaultKind.SLOW:
                    await asyncio.sleep(fault.delay_s)
                reply = _safely(routes, request, self._state, fault)
        if isinstance(reply, StreamReply):
            await _send_stream(conn, writer, reply)
            if not reply.complete:
                return False
        else:
            await _send(conn, writer, reply, head=request.method == "HEAD")
            if reply.cut_at is not None:
                return False
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if conn.they_are_waiting_for_100_continue:
                        writer.write(
                            conn.send(h11.InformationalResponse(status_code=100, headers=[]))
                        )
                    conn.receive_data(await reader.read(_READ_CHUNK))
                elif isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage) and head is not None:
                    return _to_request(head, bytes(body))
                else:
                    return None  # the client closed an idle keep-alive connection
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                reply = json_reply(exc.error_status_hint, {"error": f"bad HTTP request: {exc}"})
                await _send(conn, writer, reply, head=False)
            return None


def _safely(
    routes: ProviderRoutes, request: Request, state: EmulatorState, fault: Fault | None
) -> Answer:
    try:
        return routes.handle(request, state.knobs(routes.name), fault)
    except Exception:
        # A handler bug must reach the test as a loud 500 with a logged traceback, not as a
        # dropped connection that looks like an injected fault.
        _log.exception("%s handler failed on %s %s", routes.name, request.method, request.path)
        return json_reply(500, {"error": f"nexus emulator bug in the {routes.name} handler"})


async def _hold(reader: asyncio.StreamReader) -> None:
    """Answer nothing until the client gives up (EOF) or the server stops (cancellation)."""
    while await reader.read(_READ_CHUNK):
        pass


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP RST: SO_LINGER 0 turns the close into an abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply, *, head: bool
) -> None:
    headers = [
        ("content-type", reply.content_type),
        ("content-length", str(len(reply.body))),
        ("date", formatdate(usegmt=True)),
        ("server", _SERVER_HEADER),
        *reply.headers,
    ]
    reason = _REASONS.get(reply.status, "")
    data = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason))
    if reply.cut_at is not None:
        # Deliberately never send EndOfMessage: the caller closes with the body incomplete.
        data += conn.send(h11.Data(data=reply.body[: reply.cut_at]))
    else:
        if reply.body and not head:
            data += conn.send(h11.Data(data=reply.body))
        data += conn.send(h11.EndOfMessage())
    writer.write(data)
    await writer.drain()


async def _send_stream(
    conn: h11.Connection, writer: asyncio.StreamWriter, reply: StreamReply
) -> None:
    # No Content-Length: h11 then frames the body with chunked encoding (close-delimited for an
    # HTTP/1.0 client), one chunk per piece.
    headers = [
        ("content-type", reply.content_type),
        ("cache-control", "no-cache"),
        ("date", formatdate(usegmt=True)),
        ("server", _SERVER_HEADER),
        *reply.headers,
    ]
    reason = _REASONS.get(reply.status, "")
    writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason)))
    await writer.drain()
    for piece in reply.pieces:
        # A pause between pieces keeps them in separate TCP segments, so clients really read
        # the stream piece by piece rather than as one buffer.
        await asyncio.sleep(_PIECE_GAP_S)
        writer.write(conn.send(h11.Data(data=piece)))
        await writer.drain()
    if reply.complete:
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
    # Otherwise deliberately no EndOfMessage: the caller closes with the body unfinished.


def _to_request(head: h11.Request, body: bytes) -> Request:
    target = urlsplit(head.target.decode("ascii", "replace"))
    return Request(
        method=head.method.decode("ascii", "replace").upper(),
        path=unquote(target.path),
        query=dict(parse_qsl(target.query, keep_blank_values=True)),
        headers={name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers},
        body=body,
    )
