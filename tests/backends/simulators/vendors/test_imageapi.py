"""imageapi.org's simulator: one endpoint, an answer shape chosen by configuration."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from backends.simulators import RESPONSE_SHAPES, Fault, SimulatorConfig, SimulatorServer

VENDOR = "imageapi"
PATH = "/api/v1/generate"


def post(client: httpx.Client, sim: SimulatorServer, bearer: dict[str, str], **overrides: Any) -> httpx.Response:
    body = {
        "prompt": "a cabin in snow",
        "model": "sdxl-lightning",
        "width": 256,
        "height": 384,
        "num_inference_steps": 4,
        "negative_prompt": "blurry",
        **overrides,
    }
    return client.post(sim.base_url + PATH, headers=bearer, json=body)


def image_of(client: httpx.Client, payload: dict[str, Any]) -> bytes:
    """The one image in any of imageapi's answer shapes."""
    if "image_url" in payload:
        return client.get(payload["image_url"]).content
    if "images" in payload:
        return client.get(payload["images"][0]).content
    entry = payload["data"][0]
    return base64.b64decode(entry["b64_json"]) if "b64_json" in entry else client.get(entry["url"]).content


@pytest.mark.parametrize("shape", RESPONSE_SHAPES)
def test_each_response_shape_carries_a_png_of_the_requested_size(sim, client, bearer, open_image, shape) -> None:
    sim.config.response_shape = shape

    payload = post(client, sim, bearer).raise_for_status().json()

    assert {"data": "data", "data_b64": "data", "images": "images", "image_url": "image_url"}[shape] in payload
    image = open_image(image_of(client, payload))
    assert (image.format, image.size) == ("PNG", (256, 384))


def test_the_default_shape_is_data_with_urls(sim, client, bearer) -> None:
    assert SimulatorConfig().response_shape == "data"
    assert set(post(client, sim, bearer).json()["data"][0]) == {"url"}


def test_with_no_seed_field_each_answer_draws_its_own(sim, client, bearer) -> None:
    assert image_of(client, post(client, sim, bearer).json()) != image_of(client, post(client, sim, bearer).json())


def test_a_wrong_key_gets_401(sim, client) -> None:
    response = post(client, sim, {"Authorization": "Bearer sk_wrong"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "overrides",
    [{"num_inference_steps": 51}, {"prompt": ""}, {"width": "wide"}, {"model": "flux"}, {"seed": 11},
     {"guidance_scale": 0}],
)
def test_invalid_requests_get_400(sim, client, bearer, overrides) -> None:
    response = post(client, sim, bearer, **overrides)

    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}


def test_an_nsfw_fault_blacks_out_the_image_without_an_undocumented_flag(sim, client, bearer, open_image) -> None:
    sim.inject(Fault("nsfw"))

    payload = post(client, sim, bearer).json()

    assert set(payload) == {"data"}
    assert open_image(image_of(client, payload)).convert("RGB").getextrema() == ((0, 0),) * 3
