"""Every simulator records what it receives and suffers injected faults the same way."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest

from backends.simulators import Fault, SimulatorServer

VENDOR = "callmissed"
PATH = "/v1/images/generations"
BODY = {"model": "sdxl-lightning", "prompt": "a quiet harbour", "seed": 1, "size": "256x256"}


def post(client: httpx.Client, sim: SimulatorServer, bearer: dict[str, str], **kwargs: object) -> httpx.Response:
    return client.post(sim.base_url + PATH, headers=bearer, json=BODY, **kwargs)  # type: ignore[arg-type]


def test_a_status_fault_answers_once_with_the_vendors_body_then_service_resumes(sim, client, bearer) -> None:
    sim.inject(Fault("status", status=503))

    faulted = post(client, sim, bearer)

    assert faulted.status_code == 503
    assert faulted.json()["error"]["code"] == "service_unavailable"
    assert post(client, sim, bearer).status_code == 200


def test_faults_apply_in_order_each_for_its_times(sim, client, bearer) -> None:
    sim.inject(Fault("status", status=500, times=2), Fault("status", status=429))

    statuses = [post(client, sim, bearer).status_code for _ in range(4)]

    assert statuses == [500, 500, 429, 200]


def test_a_fault_without_times_lasts_until_cleared(sim, client, bearer) -> None:
    sim.inject(Fault("status", status=502, times=None))

    assert [post(client, sim, bearer).status_code for _ in range(3)] == [502] * 3
    sim.clear_faults()
    assert post(client, sim, bearer).status_code == 200


def test_a_status_fault_may_carry_its_own_body_and_headers(sim, client, bearer) -> None:
    sim.inject(Fault("status", status=429, headers={"Retry-After": "7"}, body="slow down"))

    response = post(client, sim, bearer)

    assert (response.status_code, response.text) == (429, "slow down")
    assert response.headers["Retry-After"] == "7"
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_latency_delays_the_answer(sim, client, bearer) -> None:
    sim.inject(Fault("latency", seconds=0.15))

    started = time.monotonic()
    response = post(client, sim, bearer)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.15


def test_base_latency_delays_every_answer(sim, client, bearer) -> None:
    sim.config.latency_s = 0.1

    started = time.monotonic()
    post(client, sim, bearer)
    post(client, sim, bearer)

    assert time.monotonic() - started >= 0.2


def test_hang_outlasts_a_short_client_timeout_then_service_resumes(sim, client, bearer) -> None:
    sim.inject(Fault("hang"))

    with pytest.raises(httpx.ReadTimeout):
        post(client, sim, bearer, timeout=0.1)
    assert post(client, sim, bearer).status_code == 200


def test_hold_keeps_a_request_waiting_until_released_then_answers_it(sim, client, bearer) -> None:
    sim.inject(Fault("hold"))

    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(post, client, sim, bearer, timeout=30)
        while not sim.requests:  # it arrived...
            time.sleep(0.01)
        assert not held.done()  # ...and waits (a wrong release would answer within the loop above)
        sim.release_held()
        assert held.result(timeout=30).status_code == 200
    assert post(client, sim, bearer).status_code == 200


def test_reset_drops_the_connection_without_an_answer(sim, client, bearer) -> None:
    sim.inject(Fault("reset"))

    with pytest.raises(httpx.TransportError):
        post(client, sim, bearer)
    assert post(client, sim, bearer).status_code == 200


def test_hang_and_reset_strike_before_the_vendor_bills_anything(sim, client, bearer) -> None:
    sim.inject(Fault("hang"), Fault("reset"))

    with pytest.raises(httpx.ReadTimeout):
        post(client, sim, bearer, timeout=0.1)
    with pytest.raises(httpx.TransportError):
        post(client, sim, bearer)

    assert sim.billed_creates == 0


@pytest.mark.parametrize(("kind", "raised"),
                         [("accept_hang", httpx.ReadTimeout), ("accept_reset", httpx.TransportError)])
def test_a_lost_answer_comes_after_the_vendor_accepted_and_billed_the_create(
    sim, client, bearer, kind: str, raised: type[Exception]
) -> None:
    sim.inject(Fault(kind))

    with pytest.raises(raised):
        post(client, sim, bearer, timeout=0.5)

    assert sim.billed_creates == 1
    assert post(client, sim, bearer).status_code == 200
    assert sim.billed_creates == 2


def test_malformed_answers_200_with_a_body_that_is_not_json(sim, client, bearer) -> None:
    sim.inject(Fault("malformed"))

    response = post(client, sim, bearer)

    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_a_fault_can_target_a_method_and_path(module_simulator, client) -> None:
    """Only the request the fault names takes it; the others pass untouched."""
    module_simulator.inject(Fault("status", status=500, path="^/nowhere$"))
    bearer = {"Authorization": f"Bearer {module_simulator.api_key}"}

    assert post(client, module_simulator, bearer).status_code == 200
    assert client.get(module_simulator.base_url + "/nowhere").status_code == 500
    module_simulator.clear_faults()


def test_requests_are_recorded_with_headers_and_json(sim, client, bearer) -> None:
    post(client, sim, bearer)
    client.get(sim.base_url + "/_sim/requests")  # admin traffic is not recorded

    [recorded] = sim.requests
    assert (recorded.method, recorded.path) == ("POST", PATH)
    assert recorded.headers["authorization"] == bearer["Authorization"]
    assert recorded.json == BODY


def test_an_unknown_path_gets_the_vendors_404_body(sim, client, bearer) -> None:
    response = client.get(sim.base_url + "/v1/models", headers=bearer)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
