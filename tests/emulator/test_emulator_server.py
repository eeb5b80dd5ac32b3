"""The server itself: keep-alive, concurrency, rude clients, start/stop, loopback and serve()."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import nexus_llm.emulator
from nexus_llm.emulator import Emulator, serve

Generate = Callable[..., httpx.Response]
BODY = {"contents": [{"parts": [{"text": "hi"}]}]}
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"


def test_public_names() -> None:
    """The package exports exactly its public API, sorted."""
    assert nexus_llm.emulator.__all__ == [
        "Emulator",
        "Fault",
        "FaultKind",
        "emulated_providers",
        "serve",
    ]


class TestConnections:
    """Connection handling under normal and rude clients."""

    def test_keep_alive_reuses_one_connection(
        self, client: httpx.Client, emulator: Emulator
    ) -> None:
        """200 sequential requests on one client travel over a single TCP connection."""
        local_ports = set()
        for _ in range(200):
            response = client.post(
                GENERATE, json=BODY, headers={"x-goog-api-key": emulator.gemini_key}
            )
            assert response.status_code == 200
            local_ports.add(response.extensions["network_stream"].get_extra_info("client_addr"))
        assert len(local_ports) == 1
        assert emulator.request_count("gemini") == 200

    def test_errors_keep_the_connection_alive(
        self, client: httpx.Client, emulator: Emulator, generate: Generate
    ) -> None:
        """Error answers do not close the connection."""
        emulator.inject("gemini", "rate_limit", times=1)
        first = generate()
        second = generate()
        assert (first.status_code, second.status_code) == (429, 200)
        addresses = {
            r.extensions["network_stream"].get_extra_info("client_addr") for r in (first, second)
        }
        assert len(addresses) == 1

    def test_fifty_concurrent_requests_succeed(self, emulator: Emulator) -> None:
        """50 requests from 50 threads at once all get 200."""
        headers = {"x-goog-api-key": emulator.gemini_key}
        limits = httpx.Limits(max_connections=50)
        start = threading.Barrier(50)

        def one(http: httpx.Client) -> int:
            start.wait()
            return http.post(GENERATE, json=BODY, headers=headers).status_code

        with (
            httpx.Client(base_url=emulator.base_url, limits=limits, timeout=10) as http,
            ThreadPoolExecutor(max_workers=50) as pool,
        ):
            codes = list(pool.map(one, [http] * 50))
        assert codes == [200] * 50
        assert emulator.request_count("gemini") == 50

    def test_client_vanishing_mid_request_is_harmless(
        self, emulator: Emulator, generate: Generate, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A client that sends half a request and hangs up neither breaks nor upsets the server."""
        caplog.set_level(logging.DEBUG)
        with socket.create_connection(("127.0.0.1", emulator.port)) as sock:
            sock.sendall(
                f"POST {GENERATE} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{{part".encode()
            )
        with socket.create_connection(("127.0.0.1", emulator.port)) as sock:
            sock.sendall(b"GARBAGE\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 400")
        assert generate().status_code == 200
        time.sleep(0.05)  # let the server thread finish with the rude connections
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


class TestLifecycle:
    """Starting, stopping and binding."""

    def test_stop_is_prompt_while_a_timeout_fault_holds_a_connection(self) -> None:
        """stop() returns at once even while a request is being held by a timeout fault."""
        emulator = Emulator().start()
        emulator.inject("gemini", "timeout")
        errors: list[BaseException] = []

        def held_request() -> None:
            try:
                httpx.post(emulator.base_url + GENERATE, json=BODY, timeout=30)
            except httpx.HTTPError as exc:
                errors.append(exc)

        thread = threading.Thread(target=held_request)
        thread.start()
        deadline = time.monotonic() + 5
        while emulator.request_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emulator.request_count() == 1
        started = time.monotonic()
        emulator.stop()
        assert time.monotonic() - started < 5
        thread.join(5)
        assert not thread.is_alive()
        assert len(errors) == 1
        emulator.stop()  # idempotent

    def test_port_is_known_after_start_and_in_base_url(self) -> None:
        """A port-0 emulator reports its bound port and a 127.0.0.1 base URL."""
        emulator = Emulator()
        with pytest.raises(RuntimeError, match="known once start"):
            _ = emulator.port
        with emulator:
            assert emulator.port > 0
            assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"
            with pytest.raises(RuntimeError, match="runs once"):
                emulator.start()

    def test_taken_port_raises_os_error_naming_it(self, emulator: Emulator) -> None:
        """Binding a port in use raises OSError whose message names the port."""
        with pytest.raises(OSError, match=f":{emulator.port}: "):
            Emulator(port=emulator.port).start()
        with pytest.raises(OSError, match=str(emulator.port)):
            serve(port=emulator.port)

    # Never bound or contacted: the point is that the emulator refuses before binding.
    @pytest.mark.parametrize("host", ["0.0.0.0", "example.com"])  # noqa: S104
    def test_non_loopback_hosts_are_refused(self, host: str) -> None:
        """Emulator and serve() refuse any host that is not loopback, before binding."""
        with pytest.raises(ValueError, match="only listens on loopback"):
            Emulator(host)
        with pytest.raises(ValueError, match="only listens on loopback"):
            serve(host)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_announces_and_stops_cleanly_on_a_signal(signum: signal.Signals) -> None:
    """serve() prints one line, answers requests and exits 0 without a traceback on a signal."""
    code = "from nexus_llm.emulator import serve; serve(port=0)"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("nexus emulator listening on http://127.0.0.1:")
        assert line.rstrip().endswith("(gemini key: emulator-gemini-key) — Ctrl-C to stop")
        base_url = line.split()[4]
        providers = [process.stdout.readline() for _ in nexus_llm.emulator.emulated_providers()]
        assert [p.split(":")[0].strip() for p in providers] == (
            nexus_llm.emulator.emulated_providers()
        )
        response = httpx.post(
            base_url + GENERATE, json=BODY, headers={"x-goog-api-key": "emulator-gemini-key"}
        )
        assert response.status_code == 200
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert stdout == ""
    assert stderr == ""
