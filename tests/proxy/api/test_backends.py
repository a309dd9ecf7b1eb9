"""``GET /v1/backends``: each route's state and why, recent latency and errors, price, last probe."""

from __future__ import annotations

import asyncio
from typing import Any

from core.errors import VendorAuthError, VendorUnavailable
from tests.proxy.api.served_app import Client, Vendors, serving


def by_route(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return {entry["route"]: entry for entry in body["data"]}


async def test_each_route_shows_its_state_latency_errors_and_price(client: Client, vendors: Vendors) -> None:
    vendors.text_only.script.append(VendorUnavailable("down", status=503))
    for _ in range(3):
        assert (await client.post("/v1/images/generations", json={"prompt": "a kite"})).status_code == 200

    routes = by_route(await client.get("/v1/backends"))

    runflow = routes["runflow:eu"]
    assert (runflow["vendor"], runflow["region"]) == ("runflow", "eu")
    assert (runflow["state"], runflow["reason"]) == ("closed", "")
    assert (runflow["attempts"], runflow["error_rate"]) == (4, 0.25)
    assert runflow["latency_p50_s"] is not None and runflow["latency_p50_s"] <= runflow["latency_p95_s"]
    assert runflow["latency_estimate_s"] is not None
    assert runflow["window_s"] == 300
    assert runflow["price_usd_1024x1024_4_steps"] == "0.004050"  # $0.003 + 35%
    assert runflow["upstream_usd_1024x1024_4_steps"] == "0.003000"
    assert runflow["last_probe"] is None
    eachlabs = routes["eachlabs:us"]
    assert (eachlabs["attempts"], eachlabs["error_rate"], eachlabs["latency_p50_s"]) == (0, None, None)


async def test_a_route_out_of_rotation_says_why_and_when_it_is_tried_again(client: Client, vendors: Vendors) -> None:
    vendors.text_only.script.append(VendorAuthError("bad key", status=401))
    await client.post("/v1/images/generations", json={"prompt": "a kite"})

    runflow = by_route(await client.get("/v1/backends"))["runflow:eu"]

    assert runflow["state"] == "quarantined"
    assert runflow["reason"] == "auth_error 401: bad key"
    assert 290 < runflow["back_in_s"] <= 300
    assert runflow["since"] > 0


async def test_the_last_probe_is_shown(vendors: Vendors) -> None:
    async with serving(vendors.routes(), probes={"interval_s": 30}) as client:
        for _ in range(200):
            routes = by_route(await client.get("/v1/backends"))
            if routes["runflow:eu"]["last_probe"] is not None:
                break
            await asyncio.sleep(0.02)

    probe = routes["runflow:eu"]["last_probe"]
    assert (probe["ok"], probe["detail"]) == (True, "scripted pass")
    assert probe["at"] > 0


async def test_any_client_key_or_the_admin_token_may_read_it_and_nobody_else(vendors: Vendors) -> None:
    settings = {"api_keys": {"bg-client": {"name": "client"}}, "admin_token": "root-token"}
    async with serving(vendors.routes(), **settings) as client:
        anonymous = await client.get("/v1/backends")
        wrong = await client.get("/v1/backends", headers={"authorization": "Bearer bg-nope"})
        keyed = await client.get("/v1/backends", headers={"authorization": "Bearer bg-client"})
        admin = await client.get("/v1/backends", headers={"authorization": "Bearer root-token"})

    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert (keyed.status_code, admin.status_code) == (200, 200)


async def test_backends_view_admin_keeps_client_keys_out(vendors: Vendors) -> None:
    settings = {"api_keys": {"bg-client": {"name": "client"}}, "admin_token": "root-token", "backends_view": "admin"}
    async with serving(vendors.routes(), **settings) as client:
        keyed = await client.get("/v1/backends", headers={"authorization": "Bearer bg-client"})
        admin = await client.get("/v1/backends", headers={"authorization": "Bearer root-token"})

    assert keyed.status_code == 403
    assert admin.status_code == 200


async def test_the_upstream_price_is_for_the_admin_unless_upstream_costs_are_exposed(vendors: Vendors) -> None:
    settings: dict[str, Any] = {"api_keys": {"bg-client": {"name": "client"}}, "admin_token": "root-token"}
    async with serving(vendors.routes(), **settings) as client:
        keyed = by_route(await client.get("/v1/backends", headers={"authorization": "Bearer bg-client"}))
        admin = by_route(await client.get("/v1/backends", headers={"authorization": "Bearer root-token"}))
    async with serving(vendors.routes(), expose_upstream_cost=True, **settings) as client:
        exposed = by_route(await client.get("/v1/backends", headers={"authorization": "Bearer bg-client"}))

    assert "upstream_usd_1024x1024_4_steps" not in keyed["runflow:eu"]
    assert keyed["runflow:eu"]["price_usd_1024x1024_4_steps"] == "0.004050"
    assert admin["runflow:eu"]["upstream_usd_1024x1024_4_steps"] == "0.003000"
    assert exposed["runflow:eu"]["upstream_usd_1024x1024_4_steps"] == "0.003000"
