"""A base64 image that passes through (vendor b64 in, client b64 out) arrives byte for byte as
the vendor sent it, and is still checked: a bomb is refused and never reaches the client."""

from __future__ import annotations

import base64
import json

import httpx

from backends.simulators import Fault
from tests.backends.vendors.test_image_check import png_declaring
from tests.e2e.conftest import SIM_KEY, StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a lighthouse", "size": "1024x1024", "seed": 7, "steps": 4,
        "response_format": "b64_json", "output_format": "png"}


def test_the_vendors_base64_reaches_the_client_byte_for_byte(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    sim = simulator("callmissed", realistic_images=True)
    server = gateway(route_to(sim))
    vendor_body = {name: value for name, value in BODY.items() if name != "output_format"}
    direct = httpx.post(f"{sim.base_url}/v1/images/generations", json=vendor_body, timeout=30,
                        headers={"Authorization": f"Bearer {SIM_KEY}"})
    through = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert direct.status_code == through.status_code == 200, (direct.text[:300], through.text[:300])
    sent = direct.json()["data"][0]["b64_json"]
    assert len(sent) > 1_000_000  # a realistic 1024x1024 PNG
    assert through.json()["data"][0]["b64_json"] == sent
    assert f'"b64_json":"{sent}"'.encode() in through.content  # spliced as the vendor wrote it


def test_a_bomb_passing_through_is_still_refused(simulator: StartSimulator, gateway: StartGateway) -> None:
    bomb = base64.b64encode(png_declaring(60_000, 60_000)).decode()
    sim = simulator("callmissed")
    sim.inject(Fault(kind="malformed", body=json.dumps({"created": 1, "data": [{"b64_json": bomb}]}), times=None))
    server = gateway(route_to(sim, max_attempts=1))
    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)
    assert response.status_code in (502, 503), response.text[:300]
    assert bomb not in response.text
    assert "unusable_output" in response.text, response.text[:300]  # refused by the image check
