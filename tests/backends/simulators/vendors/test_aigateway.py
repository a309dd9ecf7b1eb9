"""aigateway.sh's simulator: OpenAI-style, only the fields its docs show, URL answers served by the
simulator itself, errors in its OpenAPI ``Error`` shape."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from backends.simulators import Fault, SimulatorServer

VENDOR = "aigateway"
PATH = "/v1/images/generations"


def post(client: httpx.Client, sim: SimulatorServer, bearer: dict[str, str], **overrides: Any) -> httpx.Response:
    body = {
        "model": "bytedance/stable-diffusion-xl-lightning",
        "prompt": "a red fox",
        "size": "320x256",
        **overrides,
    }
    return client.post(sim.base_url + PATH, headers=bearer, json=body)


def test_the_default_answer_is_a_url_to_a_png_the_simulator_serves(sim, client, bearer, open_image) -> None:
    response = post(client, sim, bearer)

    assert response.status_code == 200
    url = response.json()["data"][0]["url"]
    assert url.startswith(sim.base_url + "/_sim/files/")
    download = client.get(url)
    assert download.headers["content-type"] == "image/png"
    image = open_image(download.content)
    assert (image.format, image.size) == ("PNG", (320, 256))


def test_b64_json_returns_the_image_inline(sim, client, bearer, open_image) -> None:
    inline = base64.b64decode(post(client, sim, bearer, response_format="b64_json").json()["data"][0]["b64_json"])

    assert open_image(inline).size == (320, 256)


def test_with_no_seed_field_each_answer_draws_its_own(sim, client, bearer) -> None:
    def fetch() -> bytes:
        return client.get(post(client, sim, bearer).json()["data"][0]["url"]).content

    assert fetch() != fetch()


@pytest.mark.parametrize("field", [{"seed": 3}, {"steps": 4}, {"negative_prompt": "x"}, {"guidance_scale": 0}])
def test_a_field_their_docs_do_not_show_is_refused(sim, client, bearer, field) -> None:
    response = post(client, sim, bearer, **field)

    assert response.status_code == 400
    assert next(iter(field)) in response.json()["error"]["message"]


def test_urls_expire(sim, client, bearer) -> None:
    sim.config.url_ttl_s = 0.02
    url = post(client, sim, bearer).json()["data"][0]["url"]
    time.sleep(0.03)

    assert client.get(url).status_code == 404


def test_a_wrong_key_gets_authentication_error(sim, client) -> None:
    response = post(client, sim, {"Authorization": "Bearer wrong"})

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_an_unknown_model_gets_not_found(sim, client, bearer) -> None:
    response = post(client, sim, bearer, model="sdxl-lightning")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"  # their Errors: "Unknown model or endpoint"


def test_an_invalid_response_format_gets_400(sim, client, bearer) -> None:
    response = post(client, sim, bearer, response_format="webp")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (402, "insufficient_credits"),
        (404, "not_found"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (503, "service_unavailable"),
    ],
)
def test_status_faults_answer_the_documented_error_types(sim, client, bearer, status, kind) -> None:
    sim.inject(Fault("status", status=status))

    response = post(client, sim, bearer)

    assert response.status_code == status
    assert response.json()["error"] == {"message": response.json()["error"]["message"], "type": kind,
                                        "code": status, "param": None}
    assert ("Retry-After" in response.headers) == (status == 429)


def test_output_404_serves_a_url_that_is_gone(sim, client, bearer) -> None:
    sim.inject(Fault("output_404"))

    url = post(client, sim, bearer).json()["data"][0]["url"]

    assert client.get(url).status_code == 404
    assert client.get(post(client, sim, bearer).json()["data"][0]["url"]).status_code == 200
