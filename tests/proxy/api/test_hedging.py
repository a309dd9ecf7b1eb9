"""Hedging through the gateway: the client is charged once, for the route that answered."""

from __future__ import annotations

import re

import pytest

from tests.proxy.api.served_app import Client, Vendors, serving

KEYS = {"bg-team": {"name": "team", "budget_credits": "10"},
        "bg-plain": {"name": "plain", "routing": {"hedging": False}}}
AUTH = {"authorization": "Bearer bg-team"}
METRICS_TOKEN = "bg-metrics"
"""/metrics is private once client keys are required."""


async def metric(client: Client, name: str, backend: str) -> float:
    answer = await client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200, answer.text
    text = answer.text
    found = re.search(rf'^{name}{{backend="{backend}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_hanging_first_route_is_hedged_and_the_client_pays_once_for_the_winner(vendors: Vendors) -> None:
    vendors.text_only.script.append("hang")
    async with serving(vendors.routes(), api_keys=KEYS, metrics_token=METRICS_TOKEN,
                       hedging={"enabled": True, "after_s": 0.05}) as client:
        cost_before = await metric(client, "boltgate_hedge_cost_usd_total", "runflow")
        won_before = await metric(client, "boltgate_hedges_won_total", "eachlabs")
        response = await client.post("/v1/images/generations", json={"prompt": "a kite"}, headers=AUTH)
        usage = (await client.get("/v1/usage", headers=AUTH)).json()
        cost = await metric(client, "boltgate_hedge_cost_usd_total", "runflow") - cost_before
        won = await metric(client, "boltgate_hedges_won_total", "eachlabs") - won_before

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    assert response.headers["x-boltgate-hedged-to"] == "eachlabs/us"
    assert response.headers["x-boltgate-cost-usd"] == "0.004158"  # eachlabs' price, and only it
    assert (usage["spent_usd"], usage["images"], usage["reserved_usd"]) == ("0.004158", 1, "0.000000")
    assert vendors.text_only.cancelled == 1
    assert cost == pytest.approx(0.003)  # runflow's upstream price, the gateway's loss
    assert won == 1


async def test_hedging_is_off_by_default_and_a_request_may_ask_for_it(vendors: Vendors) -> None:
    vendors.text_only.script.extend([0.3, 0.3])
    async with serving(vendors.routes(), api_keys=KEYS, metrics_token=METRICS_TOKEN,
                       hedging={"after_s": 0.05}) as client:
        plain = await client.post("/v1/images/generations", json={"prompt": "a kite"}, headers=AUTH)
        asked = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                  headers={**AUTH, "x-boltgate-hedge": "on"})

    assert (plain.headers["x-boltgate-backend"], plain.headers.get("x-boltgate-hedged-to")) == ("runflow", None)
    assert asked.headers["x-boltgate-hedged-to"] == "eachlabs/us"


async def test_a_request_may_turn_hedging_off_and_a_key_may_be_kept_from_asking(vendors: Vendors) -> None:
    vendors.text_only.script.append(0.3)
    async with serving(vendors.routes(), api_keys=KEYS, metrics_token=METRICS_TOKEN,
                       hedging={"enabled": True, "after_s": 0.05}) as client:
        off = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                headers={**AUTH, "x-boltgate-hedge": "off"})
        refused = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                    headers={"authorization": "Bearer bg-plain", "x-boltgate-hedge": "on"})
        garbled = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                    headers={**AUTH, "x-boltgate-hedge": "maybe"})

    assert (off.status_code, off.headers.get("x-boltgate-hedged-to")) == (200, None)
    assert (refused.status_code, refused.json()["error"]["param"]) == (403, "x-boltgate-hedge")
    assert (garbled.status_code, garbled.json()["error"]["param"]) == (400, "x-boltgate-hedge")


async def test_a_key_whose_credit_covers_one_route_but_not_both_racing_is_served_unhedged(vendors: Vendors) -> None:
    vendors.text_only.script.append(0.3)
    keys = {"bg-thin": {"name": "thin", "budget_credits": "0.6"}}  # $0.006: either route, not both ($0.008208)
    thin = {"authorization": "Bearer bg-thin"}
    async with serving(vendors.routes(), api_keys=keys, hedging={"enabled": True, "after_s": 0.05}) as client:
        response = await client.post("/v1/images/generations", json={"prompt": "a kite"}, headers=thin)
        usage = (await client.get("/v1/usage", headers=thin)).json()

    assert response.status_code == 200, response.text
    assert (response.headers["x-boltgate-backend"], response.headers.get("x-boltgate-hedged-to")) == ("runflow", None)
    assert (usage["spent_usd"], usage["reserved_usd"]) == ("0.004050", "0.000000")
