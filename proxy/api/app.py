"""The app factory: one ``Litestar`` app, its gateway built from settings by ``GatewayPlugin``."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from proxy.api.plugin import GatewayPlugin
from proxy.api.security import client_key, components
from proxy.api.telemetry import request_id_middleware
from proxy.settings import Settings
from proxy.wiring import Overrides


def create_app(settings: Settings | None = None, overrides: Overrides | None = None) -> Litestar:
    """The gateway's ASGI app: ``settings`` describe everything (read from the environment when
    None); ``overrides`` hand in parts that settings cannot describe (see ``Overrides``)."""
    settings = settings or Settings()
    app = Litestar(
        plugins=[GatewayPlugin(settings, overrides)],
        openapi_config=OpenAPIConfig(title="boltgate", version="0.1.0", path="/schema", components=components(),
                                     security=client_key(settings)),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
        logging_config=None,  # the process's logging is core.logs' one format (set by the CLI)
    )
    # Outermost, not in ``middleware=``: Litestar runs route middleware only for matched routes,
    # and the router's own 404/405 answers would leave without an ``x-request-id``.
    app.asgi_handler = request_id_middleware(app.asgi_handler, log_prompts=settings.log_prompts)
    return app
