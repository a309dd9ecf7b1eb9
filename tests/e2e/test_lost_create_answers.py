"""A create whose answer is lost (the vendor accepted and billed it, then hung or reset) over real
HTTP on loopback: each vendor bills one create per client request, the client pays at most
once, for the image it got, and nothing when it got none."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest

from backends.simulators import Fault, SimulatorServer
from core.request import ImageRequest
from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a lantern in the fog", "size": "256x256",
        "response_format": "b64_json"}
KEY = "bg-lost"
KEYS = {KEY: {"name": "lost", "budget_credits": "1000"}}
METRICS_TOKEN = "m-token"
CATALOG = PriceCatalog.load(PricingConfig())


def generate(base_url: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/images/generations", json=BODY, timeout=30,
                      headers={"Authorization": f"Bearer {KEY}"})


def spent(base_url: str) -> Decimal:
    usage = httpx.get(f"{base_url}/v1/usage", headers={"Authorization": f"Bearer {KEY}"}).json()
    return Decimal(usage["spent_usd"])


def loss(base_url: str, vendor: str) -> float:
    text = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    found = re.search(rf'^boltgate_gateway_loss_usd_total{{backend="{vendor}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def price(vendor: str) -> Decimal:
    return CATALOG.quote(vendor, ImageRequest(prompt="x", width=256, height=256)).client_usd


def creates(sim: SimulatorServer) -> list[str]:
    """The create calls the vendor received (its POSTs), whatever became of them."""
    return [request.path for request in sim.requests if request.method == "POST" and "cancel" not in request.path]


@pytest.mark.parametrize("vendor", ["eachlabs", "runflow", "aigateway", "imageapi"])
def test_a_lost_answer_fails_over_and_the_client_pays_only_the_winner(
    simulator: StartSimulator, gateway: StartGateway, vendor: str
) -> None:
    lost, winner = simulator(vendor), simulator("callmissed")
    lost.inject(Fault(kind="accept_reset", method="POST"))
    if vendor == "runflow":  # its run could be found by client_ref: here the search fails too
        lost.inject(Fault(kind="status", status=500, method="GET", path="^/v1/runs$"))
    server = gateway(route_to(lost, priority=1, max_attempts=3), route_to(winner, priority=2),
                     api_keys=KEYS, metrics_token=METRICS_TOKEN)
    lost_before = loss(server.base_url, vendor)

    response = generate(server.base_url)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "callmissed"
    assert (len(creates(lost)), lost.billed_creates) == (1, 1)  # the vendor's bill: one create, never two
    assert winner.billed_creates == 1
    charged = Decimal(response.headers["x-boltgate-cost-usd"])
    assert charged == price("callmissed") and spent(server.base_url) == charged
    assert loss(server.base_url, vendor) > lost_before  # the lost create is the gateway's loss


def test_a_runflow_run_whose_create_answer_was_lost_is_found_by_its_client_ref_and_paid_once(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    runflow, spare = simulator("runflow"), simulator("callmissed")
    runflow.inject(Fault(kind="accept_reset", method="POST"))
    server = gateway(route_to(runflow, priority=1), route_to(spare, priority=2), api_keys=KEYS)

    response = generate(server.base_url)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "runflow"
    created = [request for request in runflow.requests if request.method == "POST"]
    searched = [request for request in runflow.requests if request.path == "/v1/runs"]
    assert len(created) == 1 and runflow.billed_creates == 1 and len(searched) == 1
    assert response.headers["x-boltgate-vendor-request-id"] == runflow.state.jobs.all()[0].id
    assert spare.requests == []
    assert spent(server.base_url) == Decimal(response.headers["x-boltgate-cost-usd"]) == price("runflow")


def test_a_hanging_create_with_nowhere_else_to_go_fails_and_costs_the_client_nothing(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    lost = simulator("eachlabs")
    lost.inject(Fault(kind="accept_hang", method="POST", path="^/v1/prediction/$"))
    server = gateway(route_to(lost, timeout_s=1.0, max_attempts=3), api_keys=KEYS)

    response = generate(server.base_url)

    assert response.status_code == 503, response.text
    assert "ambiguous_create" in response.json()["error"]["message"]
    assert (len(creates(lost)), lost.billed_creates, len(lost.state.jobs.all())) == (1, 1, 1)
    assert spent(server.base_url) == 0


def test_callmissed_resends_a_lost_create_under_its_key_and_runs_it_once(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("callmissed")
    sim.inject(Fault(kind="accept_reset"))
    server = gateway(route_to(sim, max_attempts=3), api_keys=KEYS)

    response = generate(server.base_url)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-attempts"] == "2"
    sent = [request for request in sim.requests if request.method == "POST"]
    keys = {request.headers.get("idempotency-key") for request in sent}
    assert len(sent) == 2 and len(keys) == 1 and None not in keys  # one key, sent twice
    assert sim.billed_creates == 1  # the second send was answered from the first
    assert spent(server.base_url) == Decimal(response.headers["x-boltgate-cost-usd"]) == price("callmissed")


def test_a_create_refused_as_not_started_is_still_retried_on_the_same_vendor(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("eachlabs")
    sim.inject(Fault(kind="status", status=500, method="POST"))  # "Failed to create prediction"
    server = gateway(route_to(sim, max_attempts=3), api_keys=KEYS)

    response = generate(server.base_url)

    assert response.status_code == 200, response.text
    assert (len(creates(sim)), sim.billed_creates) == (2, 1)
    assert spent(server.base_url) == Decimal(response.headers["x-boltgate-cost-usd"]) > 0


def test_a_refused_connection_sent_nothing_and_is_retried_on_the_same_account(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    down, up = simulator("aigateway"), simulator("aigateway")
    down.refuse_connections()
    server = gateway(route_to(down, up, max_attempts=2), api_keys=KEYS)

    response = generate(server.base_url)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-region"] == "r2"  # the same account, another region
    assert (down.billed_creates, up.billed_creates) == (0, 1)
