"""The app factory: routes, the error mapping, the lifespan that builds and closes the gateway."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from proxy.api.admin import create_key, list_keys, revoke_key
from proxy.api.errors import EXCEPTION_HANDLERS
from proxy.api.health import healthz, metrics, readyz
from proxy.api.images import create_image, download_image, edit_image
from proxy.api.models import list_models, retrieve_model
from proxy.api.telemetry import request_id_middleware
from proxy.api.usage import key_usage
from proxy.settings import Settings
from proxy.wiring import build_gateway


def tune_garbage_collector() -> None:
    """Move everything built at start-up out of the collector's sight and collect young objects
    less often: a request allocates a few thousand short-lived objects, and the default
    threshold (700) would run a collection several times per request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        running = await build_gateway(settings)
        app.state.gateway = running.gateway
        tune_garbage_collector()
        app.state.notice = running.notice
        app.state.admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
        try:
            yield
        finally:
            await running.aclose()

    app = Litestar(
        route_handlers=[create_image, edit_image, download_image, list_models, retrieve_model,
                        healthz, readyz, metrics, key_usage, create_key, list_keys, revoke_key],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="boltgate", version="0.1.0", path="/schema"),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    # Outermost, not in ``middleware=``: Litestar runs route middleware only for matched routes,
    # and the router's own 404/405 answers would leave without an ``x-request-id``.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    return app
