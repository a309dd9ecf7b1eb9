"""The gateway's stop, bounded: background tasks cancelled until they end, each closer given a time.

Why a bound: ``boltgate serve`` bounds the requests in flight (uvicorn's graceful timeout,
``proxy.serving.run.drain_seconds``), but uvicorn awaits the app's own shutdown for as long as it
takes; a closer that hangs on a dead dependency kept a SIGTERM'd pod until its SIGKILL.

Why cancel more than once: on Python 3.11 ``asyncio.wait_for`` (redis-py wraps one around each
command) returns the result and drops a cancel that lands in the loop turn its operation finished,
so a loop around such calls goes on after its one cancel. ``cancel_and_wait`` cancels again every
``RECANCEL_EVERY_S`` until each task has ended; a task still running when its time is up (a hung
connection that swallows every cancel) is logged with where it waits and left behind: the process
is going anyway, and nothing it holds is lost by that (money is committed before it is answered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RECANCEL_EVERY_S = 0.1
"""How often a cancelled task that has not ended is cancelled again: a lost cancel costs a tenth of
a second, and the task's own clean-up (a ``finally`` that releases or logs) has turns to run."""
UNWIND_S = 2.0
"""How long cancelled background work (a probe round, a model load, an overrun closer) gets to end:
its clean-up is local or has its own timeout, and leaving one behind loses nothing."""
CLOSE_WITHIN_S = 5.0
"""How long one closer may take unless it says otherwise: closing a connection pool, a store's
connections or a simulator takes milliseconds; seconds mean that what it talks to hangs."""

Task = asyncio.Task[Any]


async def cancel_and_wait(tasks: Iterable[Task], *, within_s: float, what: str) -> set[Task]:
    """Cancel ``tasks`` and wait for them to end, cancelling again every ``RECANCEL_EVERY_S``, for
    at most ``within_s``; the tasks still running then, logged as ``what`` with where each waits.

    A task's error (other than the cancel) is its owner's to report, as the ``asyncio.gather(...,
    return_exceptions=True)`` this replaces left it."""
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within_s
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=max(0.0, min(RECANCEL_EVERY_S, give_up - loop.time())))
        if pending and loop.time() >= give_up:
            log.error("%s did not end within %g s of being cancelled; left behind:\n%s",
                      what, within_s, where_each_waits(pending))
            break
    return pending


def where_each_waits(tasks: Collection[Task]) -> str:
    """Each task by name, with the chain of coroutines it awaits (file, line, function)."""
    lines = []
    for task in tasks:
        lines.append(f"- {task.get_name()}")
        awaited: object = task.get_coro()
        while (frame := getattr(awaited, "cr_frame", None)) is not None:
            lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            awaited = getattr(awaited, "cr_await", None)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Closer:
    """One part the gateway closes when it stops: its name (for the log), how to close it, and
    how long that may take."""

    name: str
    close: Callable[[], Awaitable[None]]
    within_s: float = CLOSE_WITHIN_S


async def close_all(closers: Collection[Closer]) -> None:
    """Close in the reverse order of opening: what was built last depends on what came before
    (the stores, opened first, close last). A closer that raises or overruns its ``within_s`` is
    logged by name (an overrun one cancelled, ``UNWIND_S``), and the others still close."""
    for closer in reversed(list(closers)):
        await _close(closer)


async def _close(closer: Closer) -> None:
    closing = asyncio.ensure_future(closer.close())
    try:
        done, _ = await asyncio.wait({closing}, timeout=closer.within_s)
    except BaseException:  # the stop itself was cancelled: take this closer down with it
        closing.cancel()
        raise
    if not done:
        log.error("closing %s took more than %g s; cancelled", closer.name, closer.within_s)
        await cancel_and_wait({closing}, within_s=UNWIND_S, what=f"closing {closer.name}")
    if closing.done() and not closing.cancelled() and (error := closing.exception()) is not None:
        log.error("closing %s failed", closer.name, exc_info=error)
