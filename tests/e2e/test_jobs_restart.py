"""Async jobs across a gateway killed outright (SIGKILL) and started again, as real processes.

With Redis state the job waits in a Redis Stream's pending list; with SQLite state its record
and the list of unacknowledged jobs are in the file. Either way a job whose run was lost is run
once more and charged once; lost twice, it fails with its credits released.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.simulators import Fault, SimulatorServer
from tests.e2e.conftest import KEY_ENV, StartSimulator
from tests.e2e.gateway_process import GatewayProcess
from tests.redis_server import RedisServer

ALICE = {"Authorization": "Bearer bg-alice"}
BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256"}
PRICE = "0.001080"  # aigateway: $0.0008 + 35%
GUARD_S = 40.0


@pytest.fixture(params=["redis", "sqlite"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    if request.param == "sqlite":
        yield {"state_backend": "sqlite", "data_dir": str(tmp_path / "data")}
        return
    with RedisServer() as url:
        yield {"state_backend": "redis", "redis_url": url}


@pytest.fixture
def redis_state() -> Iterator[dict[str, object]]:
    with RedisServer() as url:
        yield {"state_backend": "redis", "redis_url": url}


def settings_for(sim: SimulatorServer, state: dict[str, object]) -> dict[str, object]:
    return {**state, "simulators": "off", "deadline_s": 20, "api_keys": {"bg-alice": {"name": "alice"}},
            "jobs": {"reclaim_idle_s": 1.0},
            "probes": {"enabled": False},  # a probe would count as one of the vendor requests asserted
            "routes": [{"vendor": sim.vendor, "key_env": KEY_ENV,
                        "regions": [{"name": "r1", "base_url": sim.base_url}]}]}


def poll(base_url: str, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{base_url}/v1/images/jobs/{job_id}", headers=ALICE, timeout=10)
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def wait_until(condition: Any, what: str) -> None:
    give_up = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < give_up, f"still waiting for {what}"
        time.sleep(0.05)


def kill_while_the_vendor_works(gateway: GatewayProcess, sim: SimulatorServer, calls: int) -> None:
    wait_until(lambda: len(sim.requests) >= calls, "the job's run to reach the vendor")
    gateway.kill()


def usage(base_url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{base_url}/v1/usage", headers=ALICE, timeout=10).json()
    return answer


def test_a_job_in_flight_when_the_gateway_dies_is_completed_after_the_restart_and_charged_once(
    state: dict[str, object], simulator: StartSimulator, tmp_path: Path
) -> None:
    sim = simulator("aigateway", latency_s=2.0)
    settings = settings_for(sim, state)
    first = GatewayProcess(settings, tmp_path / "first.log").start()
    job = httpx.post(f"{first.base_url}/v1/images/jobs", json=BODY, headers=ALICE, timeout=10).json()
    kill_while_the_vendor_works(first, sim, 1)

    with GatewayProcess(settings, tmp_path / "second.log") as second:
        wait_until(lambda: poll(second.base_url, job["id"])["status"] == "succeeded", "the job to succeed")
        done = poll(second.base_url, job["id"])
        spent = usage(second.base_url)
        # the URL names the address the job was submitted to (here the dead process's port)
        image = httpx.get(done["data"][0]["url"].replace(first.base_url, second.base_url), timeout=10)

    assert done["runs"] == 2
    assert done["billing"]["cost_usd"] == PRICE
    assert (spent["spent_usd"], spent["reserved_usd"], spent["images"]) == (PRICE, "0.000000", 1)
    assert image.status_code == 200
    assert len(sim.requests) == 2  # the lost run (the gateway's loss) and the retry


@pytest.mark.redis
def test_a_job_lost_twice_fails_with_its_credits_released(
    redis_state: dict[str, object], simulator: StartSimulator, tmp_path: Path
) -> None:
    """(Redis only: three process starts take ~20 s; SQLite counts lost runs by the same rule.)"""
    sim = simulator("aigateway", latency_s=2.0)
    settings = settings_for(sim, redis_state)
    first = GatewayProcess(settings, tmp_path / "first.log").start()
    job = httpx.post(f"{first.base_url}/v1/images/jobs", json=BODY, headers=ALICE, timeout=10).json()
    kill_while_the_vendor_works(first, sim, 1)
    second = GatewayProcess(settings, tmp_path / "second.log").start()
    kill_while_the_vendor_works(second, sim, 2)

    with GatewayProcess(settings, tmp_path / "third.log") as third:
        wait_until(lambda: poll(third.base_url, job["id"])["status"] == "failed", "the job to fail")
        failed = poll(third.base_url, job["id"])
        spent = usage(third.base_url)

    assert failed["error"]["code"] == "job_lost"
    assert (spent["spent_usd"], spent["reserved_usd"]) == ("0.000000", "0.000000")
    assert len(sim.requests) == 2


@pytest.mark.redis
def test_a_vendor_door_run_in_flight_when_the_gateway_dies_polls_to_done_after_the_restart(
    redis_state: dict[str, object], simulator: StartSimulator, tmp_path: Path
) -> None:
    """A door's run is a job like any other: Runflow's create answered, the gateway killed while
    the vendor works, the run finished by the next process and charged once."""
    sim = simulator("aigateway")
    sim.inject(Fault("hold", method="POST"))  # the first run's vendor call never answers
    settings = settings_for(sim, redis_state)
    first = GatewayProcess(settings, tmp_path / "first.log").start()
    created = httpx.post(f"{first.base_url}/vendors/runflow/v1/models/bytedance/sd-xl-lightning/runs",
                         json={"input": {"prompt": "a red kite", "width": 256, "height": 256}}, headers=ALICE,
                         timeout=10)
    assert created.status_code == 200 and created.json()["status_code"] == "queued", created.text
    kill_while_the_vendor_works(first, sim, 1)

    with GatewayProcess(settings, tmp_path / "second.log") as second:
        run_url = f"{second.base_url}/vendors/runflow/v1/runs/{created.json()['id']}"
        wait_until(lambda: httpx.get(run_url, headers=ALICE, timeout=10).json()["status_code"] == "succeeded",
                   "the run to succeed")
        run = httpx.get(run_url, headers=ALICE, timeout=10).json()
        spent = usage(second.base_url)

    assert run["cost"] == PRICE and len(run["output"]["image_urls"]) == 1
    assert (spent["spent_usd"], spent["reserved_usd"], spent["images"]) == (PRICE, "0.000000", 1)
    assert len(sim.requests) == 2  # the lost run and the retry
