"""``EventAcrossLoops``: a set on one loop's thread wakes a waiter on another loop, in both
directions the tests use it (the test holding the app, the app signalling the test)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from tests.proxy.api.across_loops import EventAcrossLoops

GENEROUS_S = 30.0
"""Not a measure of speed: only "it woke at all" rather than hanging the test run."""


def loop_in_a_thread(waits: Callable[[], Awaitable[None]]) -> tuple[threading.Event, threading.Event]:
    """A fresh loop in another thread that awaits ``waits()`` with nothing else to do (no timer
    that would wake it); (its wait has begun, it woke)."""
    begun, woke = threading.Event(), threading.Event()

    async def waiter() -> None:
        waiting = asyncio.ensure_future(waits())
        await asyncio.sleep(0)  # the wait is under way: the set below comes after it, not before
        begun.set()
        await waiting
        woke.set()

    threading.Thread(target=asyncio.run, args=(waiter(),), daemon=True).start()  # daemon: a hang fails, not blocks
    return begun, woke


def test_a_set_from_this_thread_wakes_a_loop_in_another_that_has_nothing_else_to_do() -> None:
    event = EventAcrossLoops()
    begun, woke = loop_in_a_thread(lambda: event.wait(within_s=None))
    assert begun.wait(GENEROUS_S)

    event.set()

    assert woke.wait(GENEROUS_S)  # an asyncio.Event set from here never wakes that loop


async def test_a_set_from_another_thread_wakes_this_loop() -> None:
    event = EventAcrossLoops()
    setter = threading.Thread(target=event.set)

    waiting = asyncio.ensure_future(event.wait(within_s=None))
    await asyncio.sleep(0)
    setter.start()
    await asyncio.wait_for(waiting, GENEROUS_S)

    assert event.is_set()


async def test_a_wait_after_the_set_returns_at_once() -> None:
    event = EventAcrossLoops()
    event.set()

    await event.wait(within_s=0)
