"""An event set on one event loop and awaited on another: the test's and the served app's.

The test client serves the app on its own event loop in another thread. An ``asyncio.Event`` is
not thread-safe: set from the other loop's thread, it marks its waiters done without waking
their loop, which sees them only when something else wakes it (its next timer, often a second
or more later). Tests that hold the app until the test says so (a gated backend), or wait for
the app to reach a point (a charge written), stall that long at each hand-over, or hang.
"""

from __future__ import annotations

import asyncio
import threading


class EventAcrossLoops:
    """``set`` from any thread or loop wakes every ``wait``, on whichever loop it waits: each
    waiting loop has its own ``asyncio.Event``, set through that loop (``call_soon_threadsafe``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._waiting: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}

    def set(self) -> None:
        with self._lock:
            self._set = True
            waiting = list(self._waiting.items())
        for loop, event in waiting:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def is_set(self) -> bool:
        return self._set

    async def wait(self, within_s: float | None = 10.0) -> None:
        """Until set; ``TimeoutError`` past ``within_s`` (a bound on a hang, not a measure; None: no bound)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._set:
                return
            event = self._waiting.setdefault(loop, asyncio.Event())
        async with asyncio.timeout(within_s):
            await event.wait()
