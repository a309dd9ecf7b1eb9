"""All five vendors behind the one front door, as their documentation describes them: job vendors
polled through transient errors, abandoned jobs cancelled where the vendor publishes a cancel and
booked as a loss where it does not, edits routed only where image-to-image is possible."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from decimal import Decimal

import httpx
import pytest
from PIL import Image

from backends.simulators import VENDORS, Fault
from backends.vendors.registry import VENDOR_SPECS
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sd-xl-lightning", "prompt": "a glass teapot", "size": "512x512", "response_format": "b64_json"}


def booked_loss(base_url: str, vendor: str) -> Decimal:
    """What the process has booked as lost to ``vendor`` so far (its metric, process-wide)."""
    metrics = httpx.get(f"{base_url}/metrics").text
    found = re.search(rf'^boltgate_gateway_loss_usd_total{{backend="{vendor}"}} (\S+)$', metrics, re.MULTILINE)
    return Decimal(found.group(1)).quantize(Decimal("0.000001")) if found else Decimal(0)


class Losses:
    """The losses booked from now on (the metric is shared by every gateway in this process)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.start = {vendor: booked_loss(base_url, vendor) for vendor in VENDORS}

    def __call__(self, vendor: str) -> Decimal:
        return booked_loss(self.base_url, vendor) - self.start[vendor]


@pytest.mark.parametrize("http_client", ["lean", "aiohttp", "httpx"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendor_serves_a_request_alone(vendor: str, http_client: str, simulator: StartSimulator,
                                            gateway: StartGateway) -> None:
    """On each HTTP client (the ``http_client`` setting)."""
    sim = simulator(vendor)
    server = gateway(route_to(sim), http_client=http_client)
    body = {**BODY, "seed": 11} if VENDOR_SPECS[vendor].capabilities.seed else BODY

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=body, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == vendor
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"])))
    assert image.size == (512, 512)
    assert image.format == "PNG"  # the requested format, converted where the vendor answered JPEG
    assert sim.requests, "the request reached the vendor's simulator"


@pytest.mark.parametrize("http_client", ["lean", "aiohttp", "httpx"])
def test_url_answers_are_fetched_once_and_re_served(http_client: str, simulator: StartSimulator,
                                                    gateway: StartGateway) -> None:
    sim = simulator("aigateway")
    server = gateway(route_to(sim, options={"response_format": "url"}), http_client=http_client)

    response = httpx.post(f"{server.base_url}/v1/images/generations", json={**BODY, "response_format": "url"})

    assert response.status_code == 200, response.text
    url = response.json()["data"][0]["url"]
    assert url.startswith(server.base_url)
    fetched = [r for r in sim.requests if r.path.startswith("/_sim/files/")]
    assert len(fetched) == 1
    sim.stop()  # the vendor's link is gone; the gateway still serves the image
    assert httpx.get(url).status_code == 200


def test_stuck_runflow_run_is_abandoned_booked_as_a_loss_and_served_by_eachlabs(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    """The stuck run is followed for the route's own time budget (``timeout_s=1``), then given up
    and Eachlabs serves: had the run been waited on until the request's deadline (10 s), no time
    would have been left for another route."""
    runflow, eachlabs, imageapi = simulator("runflow"), simulator("eachlabs"), simulator("imageapi")
    runflow.inject(Fault(kind="stuck_queued", times=None))
    server = gateway(
        route_to(runflow, priority=1, timeout_s=1.0),
        route_to(eachlabs, priority=2),
        route_to(imageapi, priority=3),
        deadline_s=10,
    )
    losses = Losses(server.base_url)

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    assert response.headers["x-boltgate-failed-attempts"] == "runflow/r1 job_abandoned"
    created = [r for r in runflow.requests if r.method == "POST" and r.path.endswith("/runs")]
    assert len(created) == 1  # abandoned, not retried
    polls = [r for r in runflow.requests if r.method == "GET" and r.path.startswith("/v1/runs/")]
    assert len(polls) > 1  # followed while it stayed queued, not dropped at the first look
    assert [r for r in runflow.requests if "cancel" in r.path] == []  # Runflow publishes no cancel
    assert losses("runflow") == Decimal("0.003")  # it may still run: booked as lost
    assert imageapi.requests == []


def test_a_transient_poll_error_keeps_polling_the_same_billed_job(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    runflow = simulator("runflow", running_s=0.2)
    runflow.inject(Fault(kind="status", status=503, times=2, method="GET", path=r"^/v1/runs/"))
    server = gateway(route_to(runflow))
    losses = Losses(server.base_url)

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-attempts"] == "1"
    assert len([r for r in runflow.requests if r.method == "POST"]) == 1  # one run, never a second
    assert runflow.billed_usd() == Decimal("0.003")
    assert losses("runflow") == 0


def test_an_eachlabs_prediction_that_errors_fails_over_once_and_is_a_loss(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    eachlabs, callmissed = simulator("eachlabs"), simulator("callmissed")
    eachlabs.inject(Fault(kind="fail_midway", times=1))
    server = gateway(route_to(eachlabs, priority=1, max_attempts=3), route_to(callmissed, priority=2))
    losses = Losses(server.base_url)

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "callmissed"
    assert len([r for r in eachlabs.requests if r.method == "POST"]) == 1  # never a second billed prediction
    assert losses("eachlabs") == eachlabs.billed_usd() > 0


def test_an_eachlabs_safety_refusal_is_a_content_policy_violation_when_rejecting(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    eachlabs, callmissed = simulator("eachlabs"), simulator("callmissed")
    eachlabs.inject(Fault(kind="nsfw", times=1))
    server = gateway(route_to(eachlabs, priority=1), route_to(callmissed, priority=2),
                     content_filter_action="reject")

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "content_policy_violation"
    assert callmissed.requests == []
    assert httpx.get(f"{server.base_url}/v1/usage").json()["spent_usd"] == "0.000000"


def test_a_vendor_refusing_a_request_we_accept_fails_over_and_only_all_refusing_is_a_400(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    refusing, healthy = simulator("callmissed"), simulator("eachlabs")
    refusing.inject(Fault(kind="status", status=422, times=1))
    server = gateway(route_to(refusing, priority=1), route_to(healthy, priority=2))

    served = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert served.status_code == 200, served.text
    assert served.headers["x-boltgate-backend"] == "eachlabs"
    assert len(refusing.requests) == 1

    refusing.inject(Fault(kind="status", status=400, times=1))
    healthy.inject(Fault(kind="status", status=400, times=1))
    refused = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "upstream_rejected_request"


def test_a_request_beyond_a_vendors_real_limits_skips_it_up_front(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    runflow, callmissed = simulator("runflow"), simulator("callmissed")
    server = gateway(route_to(runflow, priority=1), route_to(callmissed, priority=2))

    response = httpx.post(f"{server.base_url}/v1/images/generations", json={**BODY, "steps": 30}, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "callmissed"
    assert runflow.requests == []  # steps 30 > Runflow's 12: never asked


@pytest.mark.parametrize("image", ["truncated", "bomb"])
def test_a_vendor_image_that_does_not_decode_fails_over_and_is_never_charged(
    image: str, simulator: StartSimulator, gateway: StartGateway
) -> None:
    from tests.backends.vendors.test_image_check import encode, png_declaring

    data = encode("PNG", (512, 512))[:300] if image == "truncated" else png_declaring(60_000, 60_000)
    broken, healthy = simulator("callmissed"), simulator("eachlabs")
    entry = {"b64_json": base64.b64encode(data).decode(), "revised_prompt": None}
    answer = json.dumps({"created": 1, "data": [entry]})
    broken.inject(Fault(kind="malformed", body=answer, times=None))
    server = gateway(route_to(broken, priority=1, max_attempts=3), route_to(healthy, priority=2))
    losses = Losses(server.base_url)

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    assert len(broken.requests) == 1  # billed by the vendor: not asked again
    assert set(httpx.get(f"{server.base_url}/v1/usage").json()["by_vendor"]) == {"eachlabs"}
    assert losses("callmissed") > 0


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


def test_a_client_that_hangs_up_on_a_runflow_run_pays_nothing_and_the_run_is_a_loss(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    runflow = simulator("runflow", running_s=1.0)
    server = gateway(route_to(runflow, timeout_s=20))
    losses = Losses(server.base_url)

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=0.5)

    give_up = time.monotonic() + 5
    while losses("runflow") == 0 and time.monotonic() < give_up:
        time.sleep(0.05)
    assert losses("runflow") == Decimal("0.003")
    assert runflow.cancels == []  # no public cancel to call
    usage = httpx.get(f"{server.base_url}/v1/usage").json()
    assert usage["spent_usd"] == "0.000000"
    assert usage["reserved_usd"] == "0.000000"
    while runflow.billed_usd() == 0 and time.monotonic() < give_up:
        time.sleep(0.05)
    assert runflow.billed_usd() == losses("runflow")  # Runflow bills it all the same


def test_a_client_that_hangs_up_on_an_eachlabs_prediction_gets_it_cancelled_unbilled(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    eachlabs = simulator("eachlabs", running_s=5.0)
    server = gateway(route_to(eachlabs, timeout_s=20))
    losses = Losses(server.base_url)

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=0.5)

    give_up = time.monotonic() + 5
    while not eachlabs.cancels and time.monotonic() < give_up:
        time.sleep(0.05)
    assert len(eachlabs.cancels) == 1
    assert eachlabs.billed_usd() == 0
    assert losses("eachlabs") == 0
    assert httpx.get(f"{server.base_url}/v1/usage").json()["spent_usd"] == "0.000000"
