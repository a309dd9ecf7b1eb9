"""An app from ``create_app`` whose gateway routes to scripted backends instead of vendors.

The lifespan builds a gateway from settings with no route and the simulators off; inside the
client's context that gateway is replaced by one over the scripted backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeAlias

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.config import PricingConfig
from proxy.api.app import create_app
from proxy.billing import Billing
from proxy.gateway import Gateway
from proxy.images.store import StateImageStore
from proxy.routing.route import Route
from proxy.settings import Settings
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over

Client: TypeAlias = AsyncTestClient[Litestar]


def gateway_over(routes: list[Route], *, deadline_s: float = 5.0, require_key: bool = False) -> Gateway:
    """A gateway as the wiring builds one (billing prices the routes), over ``routes``."""
    state = MemoryStateStore()
    billing = Billing(MemoryLedgerStore(), state, PricingConfig(), {}, require_key=require_key)
    router = router_over(routes, price_of=billing.price_of)
    return Gateway(router, StateImageStore(state, 3600), state, billing, deadline_s=deadline_s)


@asynccontextmanager
async def serving(routes: list[Route], **settings: object) -> AsyncIterator[Client]:
    resolved = Settings(simulators="off", **settings)  # type: ignore[arg-type]
    app = create_app(resolved)
    async with AsyncTestClient(app=app) as client:
        app.state.gateway = gateway_over(routes, require_key=resolved.keys_required)
        yield client


@dataclass
class Vendors:
    """Two vendors: the first (tried first) cannot do image-to-image, the second can."""

    text_only: ScriptedBackend
    editor: ScriptedBackend

    def routes(self) -> list[Route]:
        return [route_to(self.text_only, priority=10), route_to(self.editor, priority=20)]
