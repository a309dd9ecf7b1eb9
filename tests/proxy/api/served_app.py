"""The app from ``create_app``, as it ships, serving scripted backends instead of vendors.

The scripted routes go in through ``Overrides``: the lifespan builds the real gateway around
them (billing, router, image store, all from the settings given) and closes them at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from proxy.api.app import create_app
from proxy.routing.route import Route
from proxy.settings import Settings
from proxy.wiring import Overrides
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to

Client: TypeAlias = AsyncTestClient[Litestar]


def app_over(routes: list[Route], *, lean: bool = True, **settings: Any) -> Litestar:
    """The app over ``routes``, with settings for tests: no simulators, retries without waiting,
    a short deadline, no background health probes, unless ``settings`` say otherwise; ``lean``
    off serves every generation through the Litestar route (``proxy.api.lean_generations``)."""
    resolved = Settings(**{"simulators": "off", "retry": NO_BACKOFF, "deadline_s": 5.0,
                           "probes": {"enabled": False}, **settings})
    return create_app(resolved, Overrides(routes=routes), lean=lean)


@asynccontextmanager
async def serving(routes: list[Route], *, lean: bool = True, **settings: Any) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=app_over(routes, lean=lean, **settings)) as client:
        yield client


@dataclass
class Vendors:
    """Two vendors: the first (tried first) cannot do image-to-image, the second can."""

    text_only: ScriptedBackend
    editor: ScriptedBackend

    def routes(self) -> list[Route]:
        return [route_to(self.text_only, priority=10), route_to(self.editor, priority=20)]


def hanging_up(inner: ASGIApp, once: Callable[[], bool]) -> ASGIApp:
    """``inner`` behind a client that sends its body, then hangs up as soon as ``once()`` holds
    (a vendor working on its image, say): the disconnect arrives mid-request, as from a real one."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body_read = False

        async def receive_then_hang_up() -> Message:
            nonlocal body_read
            if not body_read:
                body_read = True
                return await receive()
            while not once():
                await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}

        await inner(scope, receive_then_hang_up, send)

    return app
