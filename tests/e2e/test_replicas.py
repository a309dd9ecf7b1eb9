"""Gateway replicas sharing one real Redis: breakers, quarantine, budgets and images are shared."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from backends.simulators import Fault
from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis
BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256", "response_format": "b64_json"}


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as url:
        yield url


def test_a_quarantine_seen_by_one_replica_is_honoured_by_the_other(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    refusing, healthy = simulator("callmissed"), simulator("aigateway")
    refusing.inject(Fault(kind="status", status=402, times=None))
    routes = (route_to(refusing, priority=1), route_to(healthy, priority=2))
    replica_a = gateway(*routes, state_backend="redis", redis_url=redis_url)
    replica_b = gateway(*routes, state_backend="redis", redis_url=redis_url)

    first = httpx.post(f"{replica_a.base_url}/v1/images/generations", json=BODY, timeout=30)
    second = httpx.post(f"{replica_b.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert first.headers["x-boltgate-backend"] == second.headers["x-boltgate-backend"] == "aigateway"
    assert first.headers["x-boltgate-attempts"] == "2"
    assert second.headers["x-boltgate-attempts"] == "1"  # replica B never tried the refusing vendor
    assert len(refusing.requests) == 1


def test_a_budget_shared_by_two_replicas_is_never_overspent(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("aigateway", latency_s=0.05)
    price = Decimal("0.001080")  # aigateway: $0.0008 + 35%
    keys = {"bg-shared": {"name": "shared", "budget_credits": str(price * 5 / Decimal("0.01"))}}
    replicas = [gateway(route_to(sim), state_backend="redis", redis_url=redis_url, api_keys=keys) for _ in range(2)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer bg-shared"}) as client:
            return await asyncio.gather(*(client.post(f"{replicas[i % 2].base_url}/v1/images/generations", json=BODY)
                                          for i in range(20)))

    statuses = [r.status_code for r in asyncio.run(burst())]
    assert statuses.count(200) == 5
    assert statuses.count(402) == 15
    assert len(sim.requests) == 5


def test_an_image_stored_by_one_replica_downloads_from_the_other(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("callmissed")
    replica_a = gateway(route_to(sim), state_backend="redis", redis_url=redis_url)
    replica_b = gateway(route_to(sim), state_backend="redis", redis_url=redis_url)

    url = httpx.post(f"{replica_a.base_url}/v1/images/generations", json={**BODY, "response_format": "url"},
                     timeout=30).json()["data"][0]["url"]
    name = url.rsplit("/", 1)[1]

    download = httpx.get(f"{replica_b.base_url}/v1/images/files/{name}")
    assert download.status_code == 200
    assert download.content.startswith(b"\x89PNG")


def test_a_keys_rate_limit_holds_across_two_replicas(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("aigateway")
    keys = {"bg-limited": {"name": "limited", "limits": {"requests_per_minute": 5}}}
    replicas = [gateway(route_to(sim), state_backend="redis", redis_url=redis_url, api_keys=keys) for _ in range(2)]
    auth = {"Authorization": "Bearer bg-limited"}

    answers = [httpx.post(f"{replicas[i % 2].base_url}/v1/images/generations", json=BODY, headers=auth, timeout=30)
               for i in range(6)]

    assert [answer.status_code for answer in answers] == [200] * 5 + [429]
    assert [answer.headers["x-ratelimit-remaining-requests"] for answer in answers[:5]] == ["4", "3", "2", "1", "0"]
    refused = answers[5]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert (refused.headers["x-ratelimit-limit"], refused.headers["x-ratelimit-remaining"]) == ("5", "0")
    assert 1 <= int(refused.headers["x-ratelimit-reset"]) <= 60
    assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]
    assert len(sim.requests) == 5  # the refused request never reached a vendor


def test_a_keys_concurrency_limit_holds_across_two_replicas(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("aigateway", latency_s=1.0)  # the first two hold their slots while the rest arrive
    keys = {"bg-narrow": {"name": "narrow", "limits": {"concurrent_requests": 2}}}
    replicas = [gateway(route_to(sim), state_backend="redis", redis_url=redis_url, api_keys=keys) for _ in range(2)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer bg-narrow"}) as client:
            return await asyncio.gather(*(client.post(f"{replicas[i % 2].base_url}/v1/images/generations", json=BODY)
                                          for i in range(6)))

    answers = asyncio.run(burst())
    after = httpx.post(f"{replicas[0].base_url}/v1/images/generations", json=BODY,
                       headers={"Authorization": "Bearer bg-narrow"}, timeout=30)

    assert sorted(answer.status_code for answer in answers) == [200, 200, 429, 429, 429, 429]
    assert all(answer.headers["x-ratelimit-limit-concurrent"] == "2" for answer in answers)
    assert after.status_code == 200  # the slots were given back
