"""All five vendors behind the one front door, job vendors abandoned and cancelled, edits routed
only where image-to-image is possible."""

from __future__ import annotations

import base64
import io
import time

import httpx
import pytest
from PIL import Image

from backends.simulators import VENDORS, Fault
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sd-xl-lightning", "prompt": "a glass teapot", "size": "512x512", "response_format": "b64_json",
        "seed": 11}


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendor_serves_a_request_alone(vendor: str, simulator: StartSimulator, gateway: StartGateway) -> None:
    sim = simulator(vendor)
    server = gateway(route_to(sim))

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == vendor
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"])))
    assert image.size == (512, 512)
    assert image.format == "PNG"  # the requested format, converted where the vendor answered JPEG
    assert sim.requests, "the request reached the vendor's simulator"


def test_url_answers_are_fetched_once_and_re_served(simulator: StartSimulator, gateway: StartGateway) -> None:
    sim = simulator("aigateway")
    server = gateway(route_to(sim, options={"response_format": "url"}))

    response = httpx.post(f"{server.base_url}/v1/images/generations", json={**BODY, "response_format": "url"})

    assert response.status_code == 200, response.text
    url = response.json()["data"][0]["url"]
    assert url.startswith(server.base_url)
    fetched = [r for r in sim.requests if r.path.startswith("/_sim/files/")]
    assert len(fetched) == 1
    sim.stop()  # the vendor's link is gone; the gateway still serves the image
    assert httpx.get(url).status_code == 200


def test_stuck_runflow_job_is_abandoned_cancelled_and_served_by_eachlabs(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    runflow, eachlabs, imageapi = simulator("runflow"), simulator("eachlabs"), simulator("imageapi")
    runflow.inject(Fault(kind="stuck_queued", times=None))
    server = gateway(
        route_to(runflow, priority=1, timeout_s=1.0),
        route_to(eachlabs, priority=2),
        route_to(imageapi, priority=3),
        deadline_s=10,
    )

    started = time.monotonic()
    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    assert 1.0 <= elapsed < 5.0  # the job's time budget, then Eachlabs
    created = [r for r in runflow.requests if r.method == "POST" and r.path.endswith("/runs")]
    assert len(created) == 1  # abandoned, not retried
    assert len(runflow.cancels) == 1
    assert imageapi.requests == []


def test_a_failed_billed_job_fails_over_and_is_a_gateway_loss(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    runflow, eachlabs = simulator("runflow"), simulator("eachlabs")
    runflow.inject(Fault(kind="fail_midway", times=1))
    server = gateway(route_to(runflow, priority=1), route_to(eachlabs, priority=2))

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    metrics = httpx.get(f"{server.base_url}/metrics").text
    assert 'boltgate_gateway_loss_usd_total{backend="runflow"}' in metrics


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def test_an_edit_goes_only_to_routes_that_support_image_to_image(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    callmissed, eachlabs = simulator("callmissed"), simulator("eachlabs")
    server = gateway(route_to(callmissed, priority=1), route_to(eachlabs, priority=2))

    response = httpx.post(
        f"{server.base_url}/v1/images/edits",
        files={"image": ("in.png", _png(), "image/png")},
        data={"prompt": "make it blue", "size": "256x256", "response_format": "b64_json", "strength": "0.5"},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    assert callmissed.requests == []
    created = next(r for r in eachlabs.requests if r.method == "POST")
    assert created.json["input"]["image"].startswith("data:image/png;base64,")


def test_an_edit_with_no_capable_route_says_why(simulator: StartSimulator, gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("callmissed")))
    response = httpx.post(
        f"{server.base_url}/v1/images/edits",
        files={"image": ("in.png", _png(), "image/png")}, data={"prompt": "make it blue"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_request"
    assert "no image-to-image" in response.json()["error"]["message"]


def test_an_edit_with_a_broken_image_is_a_clear_400(simulator: StartSimulator, gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("eachlabs")))
    response = httpx.post(
        f"{server.base_url}/v1/images/edits",
        files={"image": ("in.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")}, data={"prompt": "x"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"


@pytest.mark.parametrize("fault", ["blank_image", "nsfw"])
def test_a_filtered_image_fails_over_and_is_not_charged(fault: str, simulator: StartSimulator,
                                                        gateway: StartGateway) -> None:
    filtered, healthy = simulator("eachlabs"), simulator("callmissed")
    filtered.inject(Fault(kind=fault, times=1))
    server = gateway(route_to(filtered, priority=1), route_to(healthy, priority=2))

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "callmissed"
    usage = httpx.get(f"{server.base_url}/v1/usage").json()
    assert set(usage["by_vendor"]) == {"callmissed"}


def test_a_filtered_image_can_be_refused_instead(simulator: StartSimulator, gateway: StartGateway) -> None:
    filtered, healthy = simulator("callmissed"), simulator("aigateway")
    filtered.inject(Fault(kind="blank_image", times=1))
    server = gateway(route_to(filtered, priority=1), route_to(healthy, priority=2), content_filter_action="reject")

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_policy_violation"
    assert healthy.requests == []
    assert httpx.get(f"{server.base_url}/v1/usage").json()["spent_usd"] == "0.000000"


def test_a_client_that_hangs_up_gets_its_vendor_job_cancelled_and_pays_nothing(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    runflow = simulator("runflow", running_s=5.0)
    server = gateway(route_to(runflow, timeout_s=20))

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=0.5)

    give_up = time.monotonic() + 5
    while not runflow.cancels and time.monotonic() < give_up:
        time.sleep(0.05)
    assert len(runflow.cancels) == 1
    usage = httpx.get(f"{server.base_url}/v1/usage").json()
    assert usage["spent_usd"] == "0.000000"
    assert usage["reserved_usd"] == "0.000000"
