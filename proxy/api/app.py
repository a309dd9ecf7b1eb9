"""The app factory: one ``Litestar`` app, its gateway built from settings by ``GatewayPlugin``."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from proxy.api.lean_generations import lean_generations
from proxy.api.plugin import GatewayPlugin
from proxy.api.security import client_key, components
from proxy.api.telemetry import request_id_middleware
from proxy.settings import Settings
from proxy.wiring import Overrides


def create_app(settings: Settings | None = None, overrides: Overrides | None = None, *, lean: bool = True) -> Litestar:
    """The gateway's ASGI app: ``settings`` describe everything (read from the environment when
    None); ``overrides`` hand in parts that settings cannot describe (see ``Overrides``).
    ``lean``: serve ``POST /v1/images/generations`` on its lean path (``proxy.api.lean_generations``);
    tests turn it off to compare it with the Litestar route."""
    settings = settings or Settings()
    plugin = GatewayPlugin(settings, overrides)
    app = Litestar(
        plugins=[plugin],
        openapi_config=OpenAPIConfig(title="boltgate", version="0.1.0", path="/schema", components=components(),
                                     security=client_key(settings)),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
        logging_config=None,  # the process's logging is core.logs' one format (set by the CLI)
    )
    # Outermost, not in ``middleware=``: Litestar runs route middleware only for matched routes,
    # and the router's own 404/405 answers would leave without an ``x-request-id``.
    # The lean path just inside it, so that its answers carry the id and are logged alike.
    inner = lean_generations(app, plugin) if lean else app.asgi_handler
    app.asgi_handler = request_id_middleware(inner, log_prompts=settings.log_prompts)
    return app
