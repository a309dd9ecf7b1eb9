"""Every response states its cost; budgets, ceilings and replays hold end to end."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from backends.simulators import VENDORS
from backends.vendors.registry import VENDOR_SPECS
from core.request import ImageRequest
from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a paper boat", "size": "256x256", "response_format": "b64_json"}
CATALOG = PriceCatalog.load(PricingConfig())


def expected_client_price(vendor: str, **fields: object) -> Decimal:
    request = ImageRequest(prompt="x", **{"width": 256, "height": 256, **fields})  # type: ignore[arg-type]
    return CATALOG.quote(vendor, request).client_usd


PER_IMAGE = [vendor for vendor in VENDORS if CATALOG.price(VENDOR_SPECS[vendor].facts.price_key).unit == "image"]


@pytest.mark.parametrize("vendor", PER_IMAGE)
def test_cost_headers_and_billing_match_the_catalog(vendor: str, simulator: StartSimulator,
                                                  gateway: StartGateway) -> None:
    server = gateway(route_to(simulator(vendor)))
    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert response.status_code == 200, response.text
    quote = CATALOG.quote(vendor, ImageRequest(prompt="x", width=256, height=256))
    assert response.headers["x-boltgate-cost-usd"] == f"{quote.client_usd:.6f}"
    assert response.headers["x-boltgate-upstream-cost-usd"] == f"{quote.upstream_usd:.6f}"
    billing = response.json()["billing"]
    assert billing["images"] == 1
    assert billing["cost_usd"] == f"{quote.client_usd:.6f}"
    assert Decimal(billing["credits"]) == quote.credits


def test_eachlabs_is_billed_from_the_reported_run_time(simulator: StartSimulator, gateway: StartGateway) -> None:
    sim = simulator("eachlabs", running_s=0.5)  # the simulator reports predict_time = time spent running
    server = gateway(route_to(sim))
    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert response.status_code == 200, response.text
    request = ImageRequest(prompt="x", width=256, height=256)
    quote = CATALOG.quote("eachlabs", request, run_seconds=Decimal("0.5"))
    assert quote != CATALOG.quote("eachlabs", request)  # billed from the report, not the estimate
    assert response.headers["x-boltgate-upstream-cost-usd"] == f"{quote.upstream_usd:.6f}"
    assert response.headers["x-boltgate-cost-usd"] == f"{quote.client_usd:.6f}"


def test_a_price_ceiling_below_the_primary_is_served_by_a_cheaper_route(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    expensive, cheap = simulator("callmissed"), simulator("aigateway")
    server = gateway(route_to(expensive, priority=1), route_to(cheap, priority=2))
    ceiling = expected_client_price("callmissed") / 2
    for _ in range(3):
        response = httpx.post(f"{server.base_url}/v1/images/generations",
                              json={**BODY, "max_price_usd": str(ceiling)}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["x-boltgate-backend"] == "aigateway"
    by_header = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30,
                           headers={"x-boltgate-max-price-usd": str(ceiling)})
    assert by_header.headers["x-boltgate-backend"] == "aigateway"
    assert expensive.requests == []


def test_a_ceiling_no_route_meets_names_the_cheapest_price(simulator: StartSimulator, gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("callmissed")), route_to(simulator("aigateway")))
    response = httpx.post(f"{server.base_url}/v1/images/generations", json={**BODY, "max_price_usd": "0.0001"})
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "price_ceiling_exceeded" and error["param"] == "max_price_usd"
    assert str(expected_client_price("aigateway")) in error["message"]


def test_budget_stops_the_request_before_any_vendor_is_called(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("callmissed")
    server = gateway(route_to(sim), api_keys={"bg-poor": {"name": "poor", "budget_credits": "1"}})
    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY,
                          headers={"Authorization": "Bearer bg-poor"})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert sim.requests == []


def test_keys_are_required_once_configured(simulator: StartSimulator, gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("callmissed")), api_keys={"bg-good": {"name": "good"}})
    missing = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY)
    wrong = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY,
                       headers={"Authorization": "Bearer bg-wrong"})
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"


def test_fifty_concurrent_requests_never_overspend_a_budget(simulator: StartSimulator, gateway: StartGateway) -> None:
    sim = simulator("callmissed", latency_s=0.05)
    price = expected_client_price("callmissed")
    affordable = 7
    budget_credits = price * affordable / Decimal("0.01")
    server = gateway(route_to(sim), api_keys={"bg-team": {"name": "team", "budget_credits": str(budget_credits)}})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                     headers={"Authorization": "Bearer bg-team"}) as client:
            return await asyncio.gather(*(client.post("/v1/images/generations", json=BODY) for _ in range(50)))

    responses = asyncio.run(burst())
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 402]
    assert len(served) + len(refused) == 50
    assert len(served) == affordable
    assert len(sim.requests) == affordable
    usage = httpx.get(f"{server.base_url}/v1/usage", headers={"Authorization": "Bearer bg-team"}).json()
    assert Decimal(usage["spent_usd"]) == price * affordable


def test_an_idempotent_replay_costs_nothing(simulator: StartSimulator, gateway: StartGateway) -> None:
    sim = simulator("callmissed")
    server = gateway(route_to(sim), api_keys={"bg-idem": {"name": "idem"}})
    headers = {"Authorization": "Bearer bg-idem", "Idempotency-Key": "order-42"}
    first = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, headers=headers, timeout=30)
    again = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 200
    assert again.json()["data"] == first.json()["data"]
    assert again.headers["x-boltgate-idempotent-replay"] == "true"
    assert again.headers["x-boltgate-cost-usd"] == "0.000000"
    assert len(sim.requests) == 1
    usage = httpx.get(f"{server.base_url}/v1/usage", headers={"Authorization": "Bearer bg-idem"}).json()
    assert Decimal(usage["spent_usd"]) == Decimal(first.headers["x-boltgate-cost-usd"])


def test_an_idempotency_key_reused_for_another_request_is_refused(simulator: StartSimulator,
                                                                  gateway: StartGateway) -> None:
    sim = simulator("callmissed")
    server = gateway(route_to(sim))
    headers = {"Idempotency-Key": "order-43"}
    first = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, headers=headers, timeout=30)
    other = httpx.post(f"{server.base_url}/v1/images/generations", json={**BODY, "prompt": "a sailing ship"},
                       headers=headers, timeout=30)
    assert first.status_code == 200
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(sim.requests) == 1


def test_what_a_job_vendor_reports_is_passed_on_for_reconciliation(simulator: StartSimulator,
                                                                    gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("runflow", running_s=0.2)))
    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert response.status_code == 200, response.text
    assert Decimal(response.headers["x-boltgate-vendor-reported-cost-usd"]) == Decimal("0.003")
    assert float(response.headers["x-boltgate-run-seconds"]) >= 0.2
    assert response.headers["x-boltgate-vendor-request-id"].startswith("run_")
