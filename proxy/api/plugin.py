"""Wires boltgate into a Litestar app: its routes, the error mapping, the lifespan that builds
the gateway once, and the dependencies handlers receive by parameter name.

=================  ====================================================
``settings``       the ``Settings`` the app was created with
``gateway``        the ``Gateway`` (router, billing, images, state)
``billing``        the gateway's ``Billing`` (keys, ledger, prices)
``image_store``    where served images are kept for download
``jobs``           the async job service (``proxy.jobs``)
=================  ====================================================

``billing`` and ``image_store`` are taken from the injected ``gateway``: Litestar resolves
dependencies that do not depend on each other concurrently, in a task group that costs about
0.1 ms a request, while a chain resolves in sequence for a few microseconds.

Nothing is kept in ``app.state``: a test that wants other parts passes settings, or
``Overrides`` for what settings cannot describe (scripted backends), to ``create_app``.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.plugins import InitPlugin
from litestar.types import ControllerRouterHandler

from proxy.api.admin import ADMIN_KEY_HANDLERS
from proxy.api.backends import backends_handler
from proxy.api.charges import list_charges
from proxy.api.errors import EXCEPTION_HANDLERS
from proxy.api.health import healthz, metrics_handler, readyz
from proxy.api.images import image_handlers
from proxy.api.injected import InjectedGateway
from proxy.api.jobs import job_handlers
from proxy.api.models import list_models, retrieve_model
from proxy.api.options import options_handlers
from proxy.api.served_limits import ServedLimits
from proxy.api.usage import key_usage
from proxy.billing import Billing
from proxy.doors import DOOR_ROUTERS
from proxy.gateway import Gateway
from proxy.images.store import ImageStore
from proxy.jobs.service import JobService
from proxy.playground.page import PLAYGROUND_HANDLERS
from proxy.settings import Settings
from proxy.wiring import Overrides, Running, build_gateway, served_routes

OTHER_ENDPOINTS: list[HTTPRouteHandler] = [
    list_models, retrieve_model, healthz, readyz, key_usage, *ADMIN_KEY_HANDLERS, list_charges,
]


def route_handlers(settings: Settings, overrides: Overrides | None) -> list[ControllerRouterHandler]:
    """Every endpoint, the image ones documented with what this deployment's routes serve; our
    OPTIONS handlers first (Litestar adds its own to a path that has none when it meets it)."""
    served = served_routes(settings, overrides)
    image_to_image = [route for route in served if route.capabilities.image_to_image]
    generations = ServedLimits.of(route.capabilities for route in served)
    endpoints = [
        *image_handlers(generations,
                        ServedLimits.of(route.capabilities for route in image_to_image),
                        pins=[pin for route in served for pin in route.pins],
                        edit_pins=[pin for route in image_to_image for pin in route.pins]),
        *job_handlers(generations, pins=[pin for route in served for pin in route.pins]),
        metrics_handler(settings),
        backends_handler(settings),
        *OTHER_ENDPOINTS,
    ]
    extras: list[ControllerRouterHandler] = [*DOOR_ROUTERS]  # each door documents its vendor's API, not ours
    if settings.playground:
        extras.extend(PLAYGROUND_HANDLERS)
    return [*options_handlers(endpoints), *endpoints, *extras]


def tune_garbage_collector() -> None:
    """Move everything built at start-up out of the collector's sight and collect young objects
    less often: a request allocates a few thousand short-lived objects, and the default
    threshold (700) would run a collection several times per request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class GatewayPlugin(InitPlugin):
    """Builds the gateway from ``settings`` (and ``overrides``) when the app starts, closes it
    when the app stops, and provides its parts to the handlers in between."""

    __slots__ = ("_running", "overrides", "settings")

    def __init__(self, settings: Settings, overrides: Overrides | None = None) -> None:
        self.settings = settings
        self.overrides = overrides
        self._running: Running | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend(route_handlers(self.settings, self.overrides))
        app_config.exception_handlers.update(EXCEPTION_HANDLERS)  # type: ignore[arg-type]
        app_config.lifespan.append(self.lifespan)
        app_config.dependencies.update({
            "settings": Provide(self.provide_settings, sync_to_thread=False),
            "gateway": Provide(self.provide_gateway, sync_to_thread=False),
            "billing": Provide(self.provide_billing, sync_to_thread=False),
            "image_store": Provide(self.provide_image_store, sync_to_thread=False),
            "jobs": Provide(self.provide_jobs, sync_to_thread=False),
        })
        return app_config

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        self._running = await build_gateway(self.settings, self.overrides)
        tune_garbage_collector()
        try:
            yield
        finally:
            running, self._running = self._running, None
            await running.aclose()

    @property
    def gateway(self) -> Gateway | None:
        """The gateway while the app runs (its lifespan builds it), else None."""
        running = self._running
        return None if running is None else running.gateway

    def provide_settings(self) -> Settings:
        return self.settings

    def provide_gateway(self) -> Gateway:
        if self._running is None:  # only reachable by serving the app without its lifespan
            raise RuntimeError("the gateway is built in the app's lifespan, which has not run")
        return self._running.gateway

    def provide_jobs(self) -> JobService:
        if self._running is None:
            raise RuntimeError("the gateway is built in the app's lifespan, which has not run")
        return self._running.jobs

    @staticmethod
    def provide_billing(gateway: InjectedGateway) -> Billing:
        return gateway.billing

    @staticmethod
    def provide_image_store(gateway: InjectedGateway) -> ImageStore:
        return gateway.images
