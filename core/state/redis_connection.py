"""How the Redis stores talk to Redis: short timeouts, one retry on a dead connection, and
every failure to answer translated, here, into ``StateUnavailable`` (503 with Retry-After).

redis-py's defaults suit a batch job, not a gateway: a 5 s socket timeout retried 10 times
with backoff turned a frozen Redis into 500s after ~5 s each. Here:

- every operation has ``timeout_s`` in all (connect, send, read), then ``StateUnavailable``;
  so is a connection reset before its first write, which uvloop raises as a ``RuntimeError``;
- a connection that died while Redis restarted is replaced at once: a ``ConnectionError`` is
  retried once, on a fresh connection, with no backoff (a timeout is not retried: the server
  is there but not answering, and a retry would only double the wait);
- replies that mean "not now" (``LOADING`` while Redis reads its AOF after a restart,
  ``MISCONF`` when it cannot write its AOF, ``READONLY``, ``OOM``, ``MASTERDOWN``, ``BUSY``)
  are outages too;
- a key holding the wrong type raises ``TypeError``, as in the memory store.

A retried write may run twice when the connection died after Redis ran it; the ledger's
operations are idempotent by id for that reason, and the counters that are not (breaker
failures) tolerate an extra count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, OutOfMemoryError, ReadOnlyError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.errors import StateUnavailable

DEFAULT_TIMEOUT_S = 2.0
"""The longest one state operation may take before the request is answered 503."""

_NOT_NOW = (ReadOnlyError, TryAgainError, ClusterDownError, OutOfMemoryError)
"""Replies redis-py parses into their own classes (``LOADING`` is a ``ConnectionError`` there)."""
_NOT_NOW_PREFIXES = ("MISCONF", "NOREPLICAS", "BUSY")
_CLOSED_TRANSPORT = "the handler is closed"
"""uvloop's ``RuntimeError`` for a write on a connection the other end reset as soon as it was
accepted (redis-py lets it through as it is): a connection lost, like an ``OSError``."""


def connect(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Redis:
    """A lazily connecting client: the first command opens the connection."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        health_check_interval=30,
    )


@asynccontextmanager
async def answering(timeout_s: float) -> AsyncIterator[None]:
    """Bound the Redis calls inside to ``timeout_s`` and translate their failures."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except ResponseError as exc:
        message = str(exc)
        if message.startswith("WRONGTYPE"):
            raise TypeError(message) from exc
        if isinstance(exc, _NOT_NOW) or message.startswith(_NOT_NOW_PREFIXES):
            raise StateUnavailable(f"The state store cannot serve right now ({type(exc).__name__})") from exc
        raise
    except (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError) as exc:
        raise StateUnavailable(
            f"The state store (Redis) did not answer within {timeout_s:g} s; nothing was charged"
        ) from exc
    except RuntimeError as exc:
        if _CLOSED_TRANSPORT not in str(exc):
            raise
        raise StateUnavailable("The state store (Redis) closed the connection before it was used") from exc
