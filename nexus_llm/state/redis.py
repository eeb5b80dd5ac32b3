"""A state store on Redis: shared by every node; fails fast so the caller can fall back."""

from __future__ import annotations

import math
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

from .base import StoreUnavailableError

if TYPE_CHECKING:
    from redis.commands.core import Script

# KEYS[1]; ARGV: expected-absent flag ("1"/"0"), expected, new, ttl in ms ("0": no expiry).
# A swap without a TTL stores the new value with no expiry: SET without PX drops the old TTL.
_CAS = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
"""
# KEYS[1]; ARGV[1]: the value the key must still hold.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisStore:
    """A `StateStore` on one Redis server (or a proxy in front of one), for many nodes.

    TTLs run on the server's clock, in whole milliseconds (rounded up, at least 1 ms).
    `add` is `SET NX PX`; `compare_and_swap` and `delete(only_if=...)` are small Lua scripts
    (EVALSHA, loaded again after a server restart). Every key gets `prefix`.

    The client does not retry and waits at most `timeout_s` to connect and for each answer:
    a down server costs one short timeout, never a hang. Every Redis failure — refused or
    broken connection, timeout, an error reply such as a read-only replica's — is raised as
    `StoreUnavailableError` whose message says only "redis" and the kind of failure: never the
    URL, which may carry a password. Nothing is sent before the first operation.

    Args:
        url: `redis://`, `rediss://` or `unix://` URL.
        timeout_s: connect and read timeout, seconds.
        prefix: namespace put in front of every key.

    Raises:
        ValueError: `url` cannot be parsed (the message does not repeat it).
    """

    name = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.25, prefix: str = "nexus:") -> None:
        try:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=timeout_s,
                socket_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError:
            raise ValueError(
                "the Redis URL is invalid: expected redis://, rediss:// or unix://"
            ) from None
        self._setup(client, prefix)

    @classmethod
    def from_client(cls, client: redis.Redis, *, prefix: str = "nexus:") -> RedisStore:
        """A store over a client you built (a fakeredis one in tests, a Sentinel's master)."""
        store = cls.__new__(cls)
        store._setup(client, prefix)
        return store

    def _setup(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._cas: Script = client.register_script(_CAS)
        self._delete_if: Script = client.register_script(_DELETE_IF)

    def get(self, key: str) -> bytes | None:
        value = self._run(self._client.get, self._prefix + key)
        return None if value is None else bytes(value)

    def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        self._run(self._client.set, self._prefix + key, value, px=_ms(ttl_s))

    def add(self, key: str, value: bytes, *, ttl_s: float) -> bool:
        return bool(self._run(self._client.set, self._prefix + key, value, nx=True, px=_ms(ttl_s)))

    def compare_and_swap(
        self, key: str, expected: bytes | None, new: bytes, *, ttl_s: float | None = None
    ) -> bool:
        args = ("1" if expected is None else "0", expected or b"", new, _ms(ttl_s) or 0)
        return bool(self._run(self._cas, keys=[self._prefix + key], args=args))

    def delete(self, key: str, *, only_if: bytes | None = None) -> bool:
        if only_if is None:
            return bool(self._run(self._client.delete, self._prefix + key))
        return bool(self._run(self._delete_if, keys=[self._prefix + key], args=[only_if]))

    def close(self) -> None:
        # Closing only drops pooled connections; a failure to do so is not worth reporting.
        with suppress(RedisError):
            self._client.close()

    def _run(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except (RedisError, OSError) as exc:
            # `from None`: the redis-py message can name the host; ours names nothing.
            raise StoreUnavailableError(f"redis unavailable: {_reason(exc)}") from None


def _ms(ttl_s: float | None) -> int | None:
    return None if ttl_s is None else max(1, math.ceil(round(ttl_s * 1000, 6)))


def _reason(exc: BaseException) -> str:
    # An error reply's code (READONLY, NOPERM, OOM, LOADING, WRONGPASS...): redis-py >= 6 keeps
    # it in `status_code` and strips it from the message; older versions leave it in front.
    code = getattr(exc, "status_code", None)
    if code is None and isinstance(exc, ResponseError):
        code = str(exc).split(" ", 1)[0]
    if isinstance(code, str) and code.isalnum() and code.isupper():
        return f"error reply {code}"
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, AuthenticationError):
        return "authentication failed"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection failed"
    return "error reply" if isinstance(exc, ResponseError) else type(exc).__name__
