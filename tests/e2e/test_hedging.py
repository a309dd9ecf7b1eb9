"""Hedging against the simulators: a route that hangs for a share of requests no longer holds them."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx

from backends.simulators import Fault
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256", "response_format": "b64_json"}
AFTER_S = 1.0
SECOND_LATENCY_S = 0.3
SLACK_S = 2.0
"""For the gateway's own work on a loaded machine; a stuck request without hedging takes 30 s."""
STUCK = {1, 4, 7}


def test_hedging_bounds_every_request_cancels_the_stuck_job_and_charges_once(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    sometimes_stuck = simulator("eachlabs")
    steady = simulator("aigateway", latency_s=SECOND_LATENCY_S)
    server = gateway(route_to(sometimes_stuck, priority=1), route_to(steady, priority=2,
                                                                     options={"response_format": "b64_json"}),
                     hedging={"enabled": True, "after_s": AFTER_S},
                     api_keys={"bg-team": {"name": "team", "budget_credits": "100"}})
    auth = {"Authorization": "Bearer bg-team"}
    answers, seconds = [], []
    for index in range(10):
        if index in STUCK:
            sometimes_stuck.inject(Fault(kind="stuck_queued"))
        started = time.monotonic()
        answers.append(httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, headers=auth, timeout=60))
        seconds.append(time.monotonic() - started)

    assert all(answer.status_code == 200 for answer in answers)
    assert max(seconds) <= AFTER_S + SECOND_LATENCY_S + SLACK_S
    hedged = {index for index, answer in enumerate(answers) if "x-boltgate-hedged-to" in answer.headers}
    assert hedged == STUCK
    assert {answers[index].headers["x-boltgate-backend"] for index in STUCK} == {"aigateway"}
    give_up = time.monotonic() + 10
    while len(sometimes_stuck.cancels) < len(STUCK) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert len(sometimes_stuck.cancels) == len(STUCK)  # each stuck job was cancelled at the vendor
    usage = httpx.get(f"{server.base_url}/v1/usage", headers=auth).json()
    charged = sum(Decimal(answer.headers["x-boltgate-cost-usd"]) for answer in answers)
    assert (usage["images"], Decimal(usage["spent_usd"]), usage["reserved_usd"]) == (10, charged, "0.000000")
