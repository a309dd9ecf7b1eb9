"""Who may call what, as the OpenAPI document states it: three bearer schemes, and which one
each operation takes under this deployment's settings.

=================  ===========================================================================
``clientKey``      a client key: the image, job, usage and webhook-secret endpoints (the
                   document's default). Required once keys are (``Settings.keys_required``);
                   until then optional, as OpenAPI writes it (``{}`` beside the scheme): a
                   caller without one is anonymous
``adminToken``     the admin token: the admin API (``/v1/admin/...``)
``metricsToken``   ``metrics_token`` (or the admin token) for ``/metrics`` once it is private
=================  ===========================================================================

Public operations (models, health, readiness, image downloads) state an empty requirement.
"""

from __future__ import annotations

from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from proxy.settings import Settings

CLIENT_KEY = "clientKey"
ADMIN_TOKEN = "adminToken"
METRICS_TOKEN = "metricsToken"

PUBLIC: list[SecurityRequirement] = []
ADMIN: list[SecurityRequirement] = [{ADMIN_TOKEN: []}]

SCHEMES = {
    CLIENT_KEY: SecurityScheme(type="http", scheme="bearer", description=(
        "A client key: 'Authorization: Bearer <key>' (OpenAI's SDKs send their api_key so). Required once "
        "the gateway has keys or an admin token (or require_api_key is set); until then optional, and a "
        "caller without one is anonymous")),
    ADMIN_TOKEN: SecurityScheme(type="http", scheme="bearer", description=(
        "The admin token (BOLTGATE_ADMIN_TOKEN); without one configured the admin API answers 403")),
    METRICS_TOKEN: SecurityScheme(type="http", scheme="bearer", description=(
        "BOLTGATE_METRICS_TOKEN (or the admin token), once /metrics is private")),
}


def components() -> Components:
    return Components(security_schemes=dict(SCHEMES))


def client_key(settings: Settings) -> list[SecurityRequirement]:
    """The document's default: a client key, or nothing while keys are not required."""
    return [{CLIENT_KEY: []}] if settings.keys_required else [{CLIENT_KEY: []}, {}]


def metrics_access(settings: Settings) -> list[SecurityRequirement]:
    return PUBLIC if settings.metrics_open else [{METRICS_TOKEN: []}, {ADMIN_TOKEN: []}]


def backends_access(settings: Settings) -> list[SecurityRequirement]:
    """``GET /v1/backends``: any client key or the admin token; only the admin token with
    ``backends_view = "admin"``."""
    if settings.backends_view == "admin":
        return ADMIN
    requirements = client_key(settings)
    return [requirements[0], {ADMIN_TOKEN: []}, *requirements[1:]]
