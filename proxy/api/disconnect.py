"""Stop work nobody waits for: when the client hangs up, its request is cancelled.

ASGI servers do not cancel a handler whose client went away; they only report
``http.disconnect`` on the next ``receive()``. Once the body has been read, a small watcher
waits for that message and cancels the handler's task, so vendor jobs are cancelled
(``backends.vendors.polling``), credit reservations released and nothing is charged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Request

from core.errors import ClientDisconnected

T = TypeVar("T")


async def unless_disconnected(request: Request[Any, Any, Any], work: Awaitable[T]) -> T:
    """``await work``, cancelled (as ``ClientDisconnected``) if the client disconnects first."""
    handler = asyncio.current_task()
    assert handler is not None
    hung_up = False

    async def watch() -> None:
        nonlocal hung_up
        while (await request.receive())["type"] != "http.disconnect":
            pass
        hung_up = True
        handler.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not hung_up:
            raise
        handler.uncancel()
        raise ClientDisconnected("The client disconnected before the images were ready") from None
    finally:
        watcher.cancel()
