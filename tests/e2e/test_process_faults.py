"""The gateway as a real process (``python -m proxy serve``) killed, stopped and restarted.

- SIGKILL mid-request: nothing runs on the way out, so the credits it held stay held until the
  reservation's lease (deadline + grace) runs out, and then come back on their own.
- SIGTERM mid-request (what Kubernetes sends): the request in flight is finished, then it exits.
- A restart of the embedded default (``make run``): admin-created keys, revocations and spend
  are still there.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from backends.simulators import Fault, SimulatorServer
from tests.e2e.conftest import KEY_ENV, StartGateway, StartSimulator, route_to
from tests.e2e.gateway_process import GatewayProcess
from tests.redis_server import RedisServer

BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256", "response_format": "b64_json"}
HANG_GUARD_S = 30.0


def route_settings(sim: SimulatorServer) -> dict[str, object]:
    return {"vendor": sim.vendor, "key_env": KEY_ENV, "regions": [{"name": "r1", "base_url": sim.base_url}]}


def wait_for(condition: object, what: str, guard_s: float = HANG_GUARD_S) -> None:
    give_up = time.monotonic() + guard_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < give_up, f"still waiting for {what}"
        time.sleep(0.05)


def usage(base_url: str, key: str) -> dict[str, object]:
    answer = httpx.get(f"{base_url}/v1/usage", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as url:
        yield url


def lease_left_s(redis_url: str) -> float:
    """How long the one lease in the Redis ledger has left, by Redis' own clock (the lease's end
    is its score in ``ledger:account:<account>:leases``, ``core.state.redis_ledger``)."""
    client = redis.Redis.from_url(redis_url)
    try:
        (leases,) = client.keys("*ledger:account:*:leases")
        ((_, ends_ms),) = client.zrange(leases, 0, -1, withscores=True)
        seconds, microseconds = client.time()
        return (ends_ms - (seconds * 1000 + microseconds / 1000)) / 1000
    finally:
        client.close()


@pytest.mark.redis
def test_a_killed_replicas_reservation_is_released_by_its_lease(
    redis_url: str, simulator: StartSimulator, gateway: StartGateway, tmp_path: Path
) -> None:
    sim = simulator("aigateway")
    sim.inject(Fault("hold"))  # the vendor never answers while the test runs: nothing but the lease can end the hold
    deadline_s, grace_s = 3.0, 1.0
    keys = {"bg-team": {"name": "team", "budget_credits": "10"}}
    shared: dict[str, object] = {"state_backend": "redis", "redis_url": redis_url, "deadline_s": deadline_s,
                                 "reservation_grace_s": grace_s, "api_keys": keys, "simulators": "off",
                                 "probes": {"enabled": False}}  # a probe would count as the vendor request
    survivor = gateway(route_to(sim), **shared)
    doomed = GatewayProcess({**shared, "routes": [route_settings(sim)]}, tmp_path / "doomed.log").start()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(httpx.post, f"{doomed.base_url}/v1/images/generations", json=BODY, timeout=60,
                    headers={"Authorization": "Bearer bg-team"})
        wait_for(lambda: len(sim.requests) == 1, "the request to reach the vendor")
        doomed.kill()
    held = usage(survivor.base_url, "bg-team")
    assert held["reserved_usd"] == "0.001080"  # aigateway: $0.0008 + 35%, held by the dead process
    assert held["remaining_credits"] == "9.8920"
    assert 0 < lease_left_s(redis_url) <= deadline_s + grace_s  # its lease: the deadline and the grace, not forever

    wait_for(lambda: usage(survivor.base_url, "bg-team")["reserved_usd"] == "0.000000", "the lease to run out")
    assert sim.billed_creates == 0  # released while the vendor still holds the request: by the lease alone
    after = usage(survivor.base_url, "bg-team")
    assert after["remaining_credits"] == "10.0000"
    assert after["spent_usd"] == "0.000000"


def test_sigterm_finishes_the_request_in_flight_then_exits(simulator: StartSimulator, tmp_path: Path) -> None:
    sim = simulator("aigateway", latency_s=1.5)
    settings: dict[str, object] = {"routes": [route_settings(sim)], "simulators": "off",
                                   "data_dir": str(tmp_path / "data"),
                                   "probes": {"enabled": False}}  # a probe would count as the vendor request
    server = GatewayProcess(settings, tmp_path / "gateway.log").start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{server.base_url}/v1/images/generations", json=BODY, timeout=60)
        wait_for(lambda: len(sim.requests) == 1, "the request to reach the vendor")
        server.terminate()
        answer = pending.result(timeout=HANG_GUARD_S)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["data"]) == 1
    # uvicorn re-raises the signal once it has shut down cleanly: killed by SIGTERM, after draining.
    assert server.wait(timeout=HANG_GUARD_S) in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete" in server.log()


def test_a_restart_of_the_embedded_default_keeps_keys_revocations_and_spend(tmp_path: Path) -> None:
    settings: dict[str, object] = {"admin_token": "adm", "data_dir": str(tmp_path / "data")}
    admin = {"Authorization": "Bearer adm"}
    with GatewayProcess(settings, tmp_path / "first.log") as first:  # the built-in simulators, as `make run`
        created = httpx.post(f"{first.base_url}/v1/admin/keys", json={"name": "team", "budget_credits": "100"},
                             headers=admin, timeout=10).json()
        old = httpx.post(f"{first.base_url}/v1/admin/keys", json={"name": "old"}, headers=admin, timeout=10).json()
        assert httpx.delete(f"{first.base_url}/v1/admin/keys/{old['id']}", headers=admin, timeout=10).status_code == 200
        served = httpx.post(f"{first.base_url}/v1/images/generations", json=BODY, timeout=60,
                            headers={"Authorization": f"Bearer {created['key']}"})
        assert served.status_code == 200, served.text
        before = usage(first.base_url, created["key"])
    assert Decimal(str(before["spent_usd"])) == Decimal(served.headers["x-boltgate-cost-usd"]) > 0

    with GatewayProcess(settings, tmp_path / "second.log") as second:
        assert usage(second.base_url, created["key"]) == before
        refused = httpx.post(f"{second.base_url}/v1/images/generations", json=BODY, timeout=60,
                             headers={"Authorization": f"Bearer {old['key']}"})
        assert refused.status_code == 401
        listed = httpx.get(f"{second.base_url}/v1/admin/keys", headers=admin, timeout=10).json()["data"]
        assert {(record["name"], record["revoked"]) for record in listed} == {("team", False), ("old", True)}
