"""Failover across regions and vendors, retries with Retry-After, all within one deadline."""

from __future__ import annotations

import time

import httpx

from backends.simulators import Fault
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a harbour at night", "size": "256x256",
        "response_format": "b64_json"}


def generate(base_url: str, timeout: float = 30.0, **extra: object) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/images/generations", json={**BODY, **extra}, timeout=timeout)


def test_primary_region_refusing_connections_is_served_by_the_second(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    primary, secondary = simulator("callmissed"), simulator("callmissed")
    primary.refuse_connections()
    server = gateway(route_to(primary, secondary, max_attempts=2))

    response = generate(server.base_url)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "callmissed"
    assert response.headers["x-boltgate-region"] == "r2"
    assert response.headers["x-boltgate-attempts"] == "3"  # two refused connects on r1, then r2
    assert len(secondary.requests) == 1


def test_vendor_503_then_hanging_is_served_by_the_other_vendor_within_the_deadline(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    flaky, healthy = simulator("callmissed"), simulator("aigateway")
    flaky.inject(Fault(kind="status", status=503, times=1), Fault(kind="hang", times=None))
    server = gateway(route_to(flaky, priority=10, timeout_s=1.0, max_attempts=3),
                     route_to(healthy, priority=20), deadline_s=8)

    response = generate(server.base_url)

    assert response.status_code == 200, response.text  # past the deadline it would be an error
    assert response.headers["x-boltgate-backend"] == "aigateway"
    assert len(flaky.requests) >= 2  # the 503, then at least one hanging attempt
    assert len(healthy.requests) == 1


def test_429_with_retry_after_is_retried_after_about_a_second(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    limited = simulator("callmissed")
    limited.inject(Fault(kind="status", status=429, times=1, headers={"Retry-After": "1"}))
    server = gateway(route_to(limited, max_attempts=3))

    started = time.monotonic()
    response = generate(server.base_url)
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-attempts"] == "2"
    # Waited out the Retry-After, not the 0.25 s backoff. No upper bound on wall time (a loaded
    # machine only adds to it): that the wait is the Retry-After's, not longer, is
    # tests/proxy/routing/test_router_waits.py's, on the router's own clock.
    assert elapsed >= 0.9
    assert len(limited.requests) == 2


def test_all_routes_down_gives_one_clear_503_listing_the_attempts(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    down_a, down_b = simulator("callmissed"), simulator("aigateway")
    down_a.inject(Fault(kind="status", status=500, times=None))
    down_b.refuse_connections()
    server = gateway(route_to(down_a, priority=10, max_attempts=2), route_to(down_b, priority=20, max_attempts=2))

    response = generate(server.base_url)

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_backend_available"
    assert error["type"] == "server_error"
    assert "callmissed/r1: unavailable 500" in error["message"]
    assert "aigateway/r1: unavailable" in error["message"]
    assert error["message"].count("callmissed/r1") == 2


def test_vendor_auth_refusal_takes_the_route_out_and_fails_over(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    refusing, healthy = simulator("callmissed"), simulator("aigateway")
    refusing.inject(Fault(kind="status", status=401, times=None))
    server = gateway(route_to(refusing, priority=10), route_to(healthy, priority=20))

    first = generate(server.base_url)
    second = generate(server.base_url)

    assert first.status_code == second.status_code == 200
    assert first.headers["x-boltgate-backend"] == second.headers["x-boltgate-backend"] == "aigateway"
    assert len(refusing.requests) == 1  # quarantined after the first 401: never retried, not asked again
