"""Budgets end to end: never overspent whatever a time-billed vendor reports, and never refused
while a route the key can afford is left.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import httpx

from backends.simulators import Fault
from core.request import ImageRequest
from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a paper boat", "size": "256x256", "response_format": "b64_json"}
CATALOG = PriceCatalog.load(PricingConfig())
REQUEST = ImageRequest(prompt="x", width=256, height=256)


def price(vendor: str) -> Decimal:
    return CATALOG.quote(vendor, REQUEST).client_usd


def credits(usd: Decimal) -> str:
    return str(usd / Decimal("0.01"))


def test_a_time_billed_vendor_never_overspends_a_budget_under_200_concurrent_requests(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("eachlabs", running_s=1.5)  # reports predict_time 1.5 s, above the caps below
    server = gateway(route_to(sim, max_billable_s_per_image=0.6),
                     api_keys={"bg-team": {"name": "team", "budget_credits": "1"}},
                     expose_upstream_cost=True, metrics_token="m-token")  # both private with client keys
    rng = random.Random(11)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60,
                                     headers={"Authorization": "Bearer bg-team"}) as client:
            return await asyncio.gather(*(client.post("/v1/images/generations", json={**BODY, "n": rng.randint(1, 2)})
                                          for _ in range(200)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} <= {200, 402}, [r.text for r in responses if r.status_code >= 500]
    served = [r for r in responses if r.status_code == 200]
    assert served
    charged = sum((Decimal(r.headers["x-boltgate-cost-usd"]) for r in served), Decimal(0))
    usage = httpx.get(f"{server.base_url}/v1/usage", headers={"Authorization": "Bearer bg-team"}).json()
    assert Decimal(usage["spent_usd"]) == charged <= Decimal("0.01")
    overran = 0
    for response in served:  # billed for at most 0.6 s per image, whatever the vendor reported
        n = len(response.json()["data"])
        reported, cap = Decimal(response.headers["x-boltgate-run-seconds"]), Decimal("0.6") * n
        billed = CATALOG.quote("eachlabs", REQUEST, run_seconds=min(reported, cap), images=n)
        assert Decimal(response.headers["x-boltgate-cost-usd"]) == billed.client_usd
        if reported > cap:
            overran += 1
            assert Decimal(response.headers["x-boltgate-upstream-cost-usd"]) > billed.upstream_usd
    assert overran == len(served)  # every job ran 1.5 s, past its cap of 0.6 or 1.2 s
    metrics = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer m-token"}).text
    assert 'boltgate_billing_overrun_usd_total{backend="eachlabs"}' in metrics


def test_a_key_that_can_afford_only_the_cheapest_route_is_served_by_it(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    pricey, cheap = simulator("callmissed"), simulator("aigateway")
    budget = price("aigateway") * 4  # far below callmissed's price
    server = gateway(route_to(pricey, priority=1), route_to(cheap, priority=2),
                     api_keys={"bg-small": {"name": "small", "budget_credits": credits(budget)}})

    answers = [httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30,
                          headers={"Authorization": "Bearer bg-small"}) for _ in range(5)]

    assert [a.status_code for a in answers] == [200, 200, 200, 200, 402]
    assert {a.headers["x-boltgate-backend"] for a in answers[:4]} == {"aigateway"}
    assert pricey.requests == []
    assert answers[4].json()["error"]["code"] == "insufficient_credits"
    usage = httpx.get(f"{server.base_url}/v1/usage", headers={"Authorization": "Bearer bg-small"}).json()
    assert Decimal(usage["spent_usd"]) == budget
    assert usage["reserved_usd"] == "0.000000"


def test_failover_to_a_pricier_route_tops_the_reservation_up_and_charges_that_route(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    cheap, pricier = simulator("aigateway"), simulator("runflow")
    cheap.inject(Fault(kind="status", status=500, times=None))
    budget = price("runflow") * 2
    server = gateway(route_to(cheap, priority=1, max_attempts=1), route_to(pricier, priority=2),
                     api_keys={"bg-team": {"name": "team", "budget_credits": credits(budget)}})

    answer = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30,
                        headers={"Authorization": "Bearer bg-team"})

    assert answer.status_code == 200, answer.text
    assert answer.headers["x-boltgate-backend"] == "runflow"
    assert Decimal(answer.headers["x-boltgate-cost-usd"]) == price("runflow")
    usage = httpx.get(f"{server.base_url}/v1/usage", headers={"Authorization": "Bearer bg-team"}).json()
    assert Decimal(usage["spent_usd"]) == price("runflow")
    assert usage["reserved_usd"] == "0.000000"


def test_failover_to_a_route_the_budget_cannot_cover_is_skipped_with_its_reason(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    cheap, pricey = simulator("aigateway"), simulator("callmissed")
    cheap.inject(Fault(kind="status", status=500, times=None))
    server = gateway(route_to(cheap, priority=1, max_attempts=1), route_to(pricey, priority=2),
                     api_keys={"bg-small": {"name": "small", "budget_credits": credits(price("aigateway") * 3)}})

    answer = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30,
                        headers={"Authorization": "Bearer bg-small"})

    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert "aigateway/r1: ambiguous_create 500" in message  # a 5xx answering a generation: maybe billed
    assert "callmissed/r1: insufficient_credits 402" in message
    assert pricey.requests == []
    usage = httpx.get(f"{server.base_url}/v1/usage", headers={"Authorization": "Bearer bg-small"}).json()
    assert usage["spent_usd"] == "0.000000"
    assert usage["reserved_usd"] == "0.000000"
