"""With client keys configured, what the gateway earns and pays is not shown to everyone:
``/metrics`` needs a token, and the vendor's cost is kept from clients unless enabled."""

from __future__ import annotations

from typing import Any

import pytest

from tests.proxy.api.served_app import serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

BODY = {"prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"}
CLIENT = {"Authorization": "Bearer bg-client"}
KEYS = {"bg-client": {"name": "client"}}


async def metrics_status(headers: dict[str, str] | None = None, **settings: Any) -> int:
    async with serving([route_to(ScriptedBackend("callmissed"))], **settings) as client:
        return (await client.get("/metrics", headers=headers or {})).status_code


async def test_metrics_are_public_while_no_key_is_required() -> None:
    assert await metrics_status() == 200


@pytest.mark.parametrize(("headers", "status"), [
    (None, 401),
    ({"Authorization": "Bearer guess"}, 403),
    ({"Authorization": "Bearer bg-client"}, 403),  # a client key is not a metrics token
    ({"Authorization": "Bearer scrape-me"}, 200),
    ({"Authorization": "Bearer admin-secret"}, 200),
])
async def test_with_client_keys_metrics_need_the_metrics_or_admin_token(headers: dict[str, str] | None,
                                                                       status: int) -> None:
    assert await metrics_status(headers, api_keys=KEYS, metrics_token="scrape-me", admin_token="admin-secret") == status


async def test_with_client_keys_and_no_token_metrics_are_refused_saying_what_to_set() -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], api_keys=KEYS) as client:
        response = await client.get("/metrics")
    assert response.status_code == 403
    assert "BOLTGATE_METRICS_TOKEN" in response.json()["error"]["message"]


async def test_metrics_may_be_made_public_on_purpose() -> None:
    assert await metrics_status(api_keys=KEYS, metrics_public=True) == 200


async def served(**settings: Any) -> tuple[dict[str, str], dict[str, Any]]:
    async with serving([route_to(ScriptedBackend("runflow"))], **settings) as client:
        response = await client.post("/v1/images/generations", json=BODY, headers=CLIENT)
    assert response.status_code == 200, response.text
    return dict(response.headers), response.json()["billing"]


async def test_with_client_keys_the_upstream_cost_is_not_sent() -> None:
    headers, billing = await served(api_keys=KEYS)
    assert "x-boltgate-upstream-cost-usd" not in headers and "upstream_cost_usd" not in billing
    assert "x-boltgate-vendor-reported-cost-usd" not in headers
    assert "x-boltgate-cost-usd" in headers and "cost_usd" in billing


async def test_the_upstream_cost_is_sent_when_enabled_or_without_keys() -> None:
    for settings in ({"api_keys": KEYS, "expose_upstream_cost": True}, {"require_api_key": False}):
        headers, billing = await served(**settings)
        assert "x-boltgate-upstream-cost-usd" in headers and "upstream_cost_usd" in billing
