"""The lean client's keep-alive pool: idle connections per origin, at most ``max_connections`` open.

A connection goes back to the pool only when its answer was read to the end and the server
keeps it alive (``HttpConnection.reusable``); any other is closed. An idle connection the server
has closed since, or one idle longer than ``KEEPALIVE_S`` (servers close theirs after 5-75 s:
sending on one the server is closing at that moment is a lost request), is closed when next
looked at, never used. The most recently used is taken first, as the least likely to be stale.

When ``max_connections`` are open, a caller closes an idle connection of another origin to make
room, or waits (within its call's budget) for one to come back.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from backends.vendors.http.lean_connection import HttpConnection

Origin = tuple[str, str, int]
"""Scheme, host (lowercase), port."""
Dial = Callable[[Origin], Awaitable[HttpConnection]]

KEEPALIVE_S = 15.0
"""How long an idle connection is kept (aiohttp's default)."""


class ConnectionPool:
    def __init__(self, max_connections: int, dial: Dial) -> None:
        self._max_connections = max_connections
        self._dial = dial
        self._idle: dict[Origin, list[tuple[HttpConnection, float]]] = {}
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def open_connections(self) -> int:
        """In use, or idle and still open (an idle one the server closed is not counted)."""
        closed = sum(1 for idle in self._idle.values() for connection, _ in idle if not connection.open)
        return self._open - closed

    async def acquire(self, origin: Origin) -> HttpConnection:
        """An idle connection to ``origin``, or a new one; ``dial``'s errors pass through."""
        while True:
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
            if self._open < self._max_connections or self._evict_one():
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: pass the turn on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return await self._new(origin)

    async def warm(self, origin: Origin, count: int) -> int:
        """Open connections to ``origin`` at once until ``count`` are idle there (as many as the
        limit leaves room for); how many were opened. One that fails is not retried."""
        idle = sum(1 for connection, _ in self._idle.get(origin, []) if connection.open)
        wanted = min(count - idle, self._max_connections - self._open)
        if wanted <= 0:
            return 0
        opened = await asyncio.gather(*(self._new(origin) for _ in range(wanted)), return_exceptions=True)
        for connection in opened:
            if isinstance(connection, BaseException):
                if not isinstance(connection, Exception):  # a cancellation
                    raise connection
                continue
            self.release(origin, connection)
        return sum(1 for connection in opened if not isinstance(connection, BaseException))

    async def _new(self, origin: Origin) -> HttpConnection:
        self._open += 1
        try:
            return await self._dial(origin)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    def release(self, origin: Origin, connection: HttpConnection) -> None:
        """Back into the pool if reusable, else closed; either way a waiter may go on."""
        if connection.reusable:
            connection.reset()
            self._idle.setdefault(origin, []).append((connection, asyncio.get_running_loop().time()))
        else:
            connection.close()
            self._open -= 1
        self._wake_one()

    def close(self) -> None:
        for idle in self._idle.values():
            for connection, _ in idle:
                connection.close()
        self._open -= sum(len(idle) for idle in self._idle.values())
        self._idle.clear()

    def _take_idle(self, origin: Origin) -> HttpConnection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        stale_before = asyncio.get_running_loop().time() - KEEPALIVE_S
        while idle:
            connection, since = idle.pop()
            if connection.open and since >= stale_before:
                return connection
            connection.close()
            self._open -= 1
        return None

    def _evict_one(self) -> bool:
        """Close the longest-idle connection of any origin, to open one for another."""
        for idle in self._idle.values():
            if idle:
                connection, _ = idle.pop(0)
                connection.close()
                self._open -= 1
                return True
        return False

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
