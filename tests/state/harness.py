"""What the state-store tests share: a fake clock, a real redis-server, multi-process workers."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import time
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import redis

from nexus_llm.state import SQLiteStore, StateStore
from nexus_llm.state.redis import RedisStore

# Where a worker process finds its store: ("sqlite", path) or ("redis", url, prefix).
StoreSpec = tuple[str, ...]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A throw-away `redis-server` on loopback: no persistence, files in `workdir`."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start on a free port the first time, on the same port after `stop`."""
        attempts = 1 if self.port else 3
        for _ in range(attempts):
            if not self.port or attempts > 1:
                self.port = free_port()
            if self._launch():
                return
        log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")

    def stop(self) -> None:
        """Terminate the server and wait for it to exit."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def client(self) -> redis.Redis:
        """A plain client for checking what the server holds."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def _launch(self) -> bool:
        argv = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        with (self.workdir / "redis.log").open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False
            try:
                with self.client() as probe:
                    if probe.ping():
                        return True
            except redis.RedisError:
                time.sleep(0.02)
        self.stop()
        return False


def mp_context() -> ForkContext | SpawnContext:
    """fork where there is one (much faster to start); spawn elsewhere."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def open_spec(spec: StoreSpec) -> StateStore:
    """Open the store a worker process was told about."""
    if spec[0] == "sqlite":
        return SQLiteStore(spec[1])
    if spec[0] == "redis":
        # A generous timeout: four busy processes on two cores must not look like an outage.
        return RedisStore(spec[1], prefix=spec[2], timeout_s=5.0)
    raise ValueError(spec[0])


def add_worker(spec: StoreSpec, keys: int, barrier: Barrier, out: Queue[list[int]]) -> None:
    """Try to take every lock `lock:0..keys-1`; report the ones this process won."""
    store = open_spec(spec)
    barrier.wait()
    won = [i for i in range(keys) if store.add(f"lock:{i}", b"held", ttl_s=60.0)]
    store.close()
    out.put(won)


def cas_worker(spec: StoreSpec, increments: int, barrier: Barrier, out: Queue[int]) -> None:
    """Add one to `counter` `increments` times with a read / compare-and-swap retry loop."""
    store = open_spec(spec)
    barrier.wait()
    retries = 0
    for _ in range(increments):
        while True:
            current = store.get("counter")
            new = str(int(current or b"0") + 1).encode()
            if store.compare_and_swap("counter", current, new):
                break
            retries += 1
    store.close()
    out.put(retries)
