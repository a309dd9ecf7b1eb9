"""A task that swallows every cancel, and a bounded await that still ends when one hangs.

``Deaf`` stands for a dependency that never gives back: on Python 3.11 a cancel that lands as
redis-py's ``asyncio.wait_for`` finishes is dropped, and a hung connection drops them all. Code
that cancels such a task once and then awaits it without a bound never returns.

``ends_within`` bounds the await without ``asyncio.wait_for``, which cannot bound it: on a
timeout, ``wait_for`` cancels what it awaits and then waits for it to end, which a deaf task never
does; and on 3.11, if that then ends with a result, ``wait_for`` returns the result as if in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

GENEROUS_S = 20.0
"""Not a measure of speed: only "it ended at all" rather than hanging the test run."""


class Deaf:
    """``run`` ignores every cancel until ``release``; ``cancels`` counts the ones it swallowed."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.released = asyncio.Event()
        self.cancels = 0

    async def run(self) -> None:
        self.started.set()
        while not self.released.is_set():
            try:
                await self.released.wait()
            except asyncio.CancelledError:
                self.cancels += 1

    def release(self) -> None:
        self.released.set()


async def ends_within(awaitable: Awaitable[T], *deaf: Deaf, seconds: float = GENEROUS_S) -> T:
    """The result of ``awaitable``, which must end within ``seconds`` while the ``deaf`` ignore
    every cancel; past the bound they are released (so that the test run goes on) and it fails."""
    waiting = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({waiting}, timeout=seconds)
    if not done:
        for each in deaf:
            each.release()
        await asyncio.wait({waiting})
        raise AssertionError(f"still waiting after {seconds:g} s, held by a task that ignores its cancels")
    return waiting.result()
