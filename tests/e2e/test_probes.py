"""Health probes between real replicas sharing one real Redis, against the vendor simulators."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from backends.simulators import Fault, SimulatorServer
from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.e2e.gateway_server import GatewayServer
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis
BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256", "response_format": "b64_json"}
INTERVAL_S = 3.0
"""Long enough that the test's requests fit between two probes, even on a loaded machine."""


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as url:
        yield url


def eventually(check: Callable[[], bool], what: str, within_s: float = 20.0) -> None:
    give_up = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < give_up, f"never happened: {what}"
        time.sleep(0.05)


def probed(redis_url: str, route: str) -> Callable[[], bool]:
    """True once some replica has applied a probe's verdict to ``route`` (it is then kept)."""
    client = redis.Redis.from_url(redis_url)
    return lambda: client.exists(f"boltgate:health:{route}:probe") == 1


def route_state(server: GatewayServer, route: str) -> str:
    states = {entry["route"]: entry["state"] for entry in httpx.get(f"{server.base_url}/readyz").json()["routes"]}
    return str(states[route])


def probe_requests(sim: SimulatorServer) -> int:
    return sum(1 for request in sim.requests if not request.path.startswith("/v1/images"))


def test_a_route_failing_on_one_replica_is_skipped_by_the_other_until_a_probe_brings_it_back(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    flaky, steady = simulator("callmissed"), simulator("aigateway")
    routes = (route_to(flaky, priority=1, max_attempts=1), route_to(steady, priority=2, max_attempts=1))
    shared = {"state_backend": "redis", "redis_url": redis_url, "breaker": {"failure_threshold": 1, "open_s": 600},
              "probes": {"interval_s": INTERVAL_S}}
    started = time.monotonic()
    replica_a, replica_b = gateway(*routes, **shared), gateway(*routes, **shared)
    eventually(probed(redis_url, "callmissed:r1"), "the first probe of callmissed")
    flaky.inject(Fault(kind="status", status=500, path="^/v1/images", times=1))

    on_a = httpx.post(f"{replica_a.base_url}/v1/images/generations", json=BODY, timeout=30)
    on_b = httpx.post(f"{replica_b.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert (on_a.headers["x-boltgate-backend"], on_a.headers["x-boltgate-attempts"]) == ("aigateway", "2")
    assert (on_b.headers["x-boltgate-backend"], on_b.headers["x-boltgate-attempts"]) == ("aigateway", "1")
    assert sum(1 for r in flaky.requests if r.path.startswith("/v1/images")) == 1  # B never called it
    assert route_state(replica_b, "callmissed:r1") == "open"

    eventually(lambda: route_state(replica_b, "callmissed:r1") == "half_open", "a probe brings callmissed back")
    back = httpx.post(f"{replica_b.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert back.headers["x-boltgate-backend"] == "callmissed"  # a trial request, which closes it
    assert route_state(replica_a, "callmissed:r1") == "closed"

    elapsed = time.monotonic() - started
    most = int(elapsed // INTERVAL_S) + 1  # one per interval per route, whatever the number of replicas
    assert 2 <= probe_requests(flaky) <= most
    assert 1 <= probe_requests(steady) <= most


def test_readyz_is_503_when_every_route_is_open_and_ready_again_once_a_probe_passes(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    only = simulator("callmissed")
    server = gateway(route_to(only, max_attempts=1), breaker={"failure_threshold": 1, "open_s": 600},
                     probes={"interval_s": INTERVAL_S}, state_backend="redis", redis_url=redis_url)
    eventually(probed(redis_url, "callmissed:r1"), "the first probe")
    only.inject(Fault(kind="status", status=500, path="^/v1/images", times=1))

    failed = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    not_ready = httpx.get(f"{server.base_url}/readyz")

    assert failed.status_code == 503 and int(failed.headers["retry-after"]) >= 1
    assert not_ready.status_code == 503
    assert not_ready.json()["problems"][0].startswith("no route can serve: callmissed:r1: circuit open")
    assert int(not_ready.headers["retry-after"]) >= 1
    eventually(lambda: httpx.get(f"{server.base_url}/readyz").status_code == 200, "ready again after a probe")
    assert route_state(server, "callmissed:r1") == "half_open"


def test_readyz_is_503_with_only_an_unreachable_worker(simulator: StartSimulator, gateway: StartGateway) -> None:
    gone = simulator("callmissed")
    gone.refuse_connections()
    server = gateway(route_to(gone, vendor="worker"), probes={"interval_s": 30.0})

    eventually(lambda: httpx.get(f"{server.base_url}/readyz").status_code == 503, "the probe finds it unreachable")

    problem = httpx.get(f"{server.base_url}/readyz").json()["problems"][0]
    assert problem.startswith("no route can serve: worker:r1: circuit open (probe failed: ")
    assert "unreachable" in problem
