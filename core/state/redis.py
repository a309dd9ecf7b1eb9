"""Redis state: what replicas share, so that budgets, breakers and idempotency keys agree.

Each method is one Redis command or one Lua script, hence atomic across every replica that talks
to the same server. TTLs are seconds as floats, sent as milliseconds (``PX``/``PEXPIRE``) so that
sub-second TTLs keep their meaning. Every call is bounded by a short timeout and a Redis that
does not answer raises ``StateUnavailable`` (see ``core.state.redis_connection``); a key holding
the wrong type raises ``TypeError``, as in the memory store.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from redis.asyncio import Redis

from core.state.redis_connection import DEFAULT_TIMEOUT_S, answering, connect

# INCRBY, then PEXPIRE only if this call created the key: an existing key keeps its TTL.
_INCR_WITH_TTL = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

# The budget check and the reservation in one step; a nil reply means refused. ARGV[3] > 0 is a
# TTL (ms) for a key this call creates.
_INCR_WITHIN = """
local existed = redis.call('EXISTS', KEYS[1]) == 1
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return false
end
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if not existed and tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return value
"""

# HINCRBY, then PEXPIRE only if this call created the hash.
_HINCR_WITH_TTL = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return value
"""

# Leases are members of a sorted set scored by their end (ms, the server's clock, so replicas'
# clocks do not matter); ended ones are dropped before counting.
_ACQUIRE_LEASE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and held >= tonumber(ARGV[2]) then
  return false
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('ZCARD', KEYS[1])
"""


def _milliseconds(ttl: float) -> int:
    """Redis refuses a zero or negative expiry; the shortest it takes is 1 ms."""
    return max(1, round(ttl * 1000))


class RedisStateStore:
    """The ``StateStore`` protocol over ``redis.asyncio``; every key is namespaced by a prefix."""

    def __init__(self, client: Redis, key_prefix: str = "boltgate:", *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._client = client
        self._prefix = key_prefix
        self._timeout_s = timeout_s
        self._incr_with_ttl: Any = client.register_script(_INCR_WITH_TTL)
        self._incr_within: Any = client.register_script(_INCR_WITHIN)
        self._acquire_lease: Any = client.register_script(_ACQUIRE_LEASE)
        self._hincr_with_ttl: Any = client.register_script(_HINCR_WITH_TTL)

    @classmethod
    def from_url(cls, url: str, key_prefix: str = "boltgate:", *, timeout_s: float = DEFAULT_TIMEOUT_S
                 ) -> RedisStateStore:
        """Connect lazily: the first command opens the connection, so a bad URL fails there."""
        return cls(connect(url, timeout_s), key_prefix=key_prefix, timeout_s=timeout_s)

    @property
    def client(self) -> Redis:
        """The connection pool, for the ledger store that shares it."""
        return self._client

    @property
    def key_prefix(self) -> str:
        return self._prefix

    def _answering(self) -> AbstractAsyncContextManager[None]:
        return answering(self._timeout_s)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key: str) -> bytes | None:
        async with self._answering():
            value = await self._client.get(self._key(key))
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else _milliseconds(ttl)
        async with self._answering():
            await self._client.set(self._key(key), value, px=px)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = None if ttl is None else _milliseconds(ttl)
        async with self._answering():
            return bool(await self._client.set(self._key(key), value, px=px, nx=True))

    async def delete(self, key: str) -> None:
        async with self._answering():
            await self._client.delete(self._key(key))

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        async with self._answering():
            if ttl is None:
                return int(await self._client.incrby(self._key(key), amount))
            value = await self._incr_with_ttl(keys=[self._key(key)], args=[amount, _milliseconds(ttl)])
        return int(value)

    async def incr_within(self, key: str, amount: int, limit: int, ttl: float | None = None) -> int | None:
        px = 0 if ttl is None else _milliseconds(ttl)
        async with self._answering():
            value = await self._incr_within(keys=[self._key(key)], args=[amount, limit, px])
        return None if value is None else int(value)

    async def acquire_lease(self, key: str, holder: str, limit: int, ttl: float) -> int | None:
        async with self._answering():
            held = await self._acquire_lease(keys=[self._key(key)], args=[holder, limit, _milliseconds(ttl)])
        return None if held is None else int(held)

    async def release_lease(self, key: str, holder: str) -> None:
        async with self._answering():
            await self._client.zrem(self._key(key), holder)

    async def hincr(self, key: str, field: str, amount: int, ttl: float | None = None) -> int:
        async with self._answering():
            if ttl is None:
                return int(await self._client.hincrby(self._key(key), field, amount))
            value = await self._hincr_with_ttl(keys=[self._key(key)], args=[field, amount, _milliseconds(ttl)])
        return int(value)

    async def hdel(self, key: str, field: str) -> None:
        async with self._answering():
            await self._client.hdel(self._key(key), field)

    async def hgetall(self, key: str) -> dict[str, int]:
        async with self._answering():
            table = await self._client.hgetall(self._key(key))
        return {(field.decode() if isinstance(field, bytes) else field): int(value) for field, value in table.items()}

    async def ttl(self, key: str) -> float | None:
        async with self._answering():
            milliseconds = int(await self._client.pttl(self._key(key)))
        if milliseconds < 0:  # -2: no such key, -1: no TTL
            return None
        return milliseconds / 1000

    async def aclose(self) -> None:
        await self._client.aclose()
