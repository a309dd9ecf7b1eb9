"""CallMissed's simulator speaks OpenAI's Images API with b64_json only and Idempotency-Key."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from backends.simulators import Fault, SimulatorServer

VENDOR = "callmissed"
PATH = "/v1/images/generations"


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "model": "sdxl-lightning",
        "prompt": "a lighthouse at dusk",
        "seed": 7,
        "size": "512x384",
        "response_format": "b64_json",
        **overrides,
    }


def post(client: httpx.Client, sim: SimulatorServer, bearer: dict[str, str], **overrides: Any) -> httpx.Response:
    return client.post(sim.base_url + PATH, headers=bearer, json=body(**overrides))


def image_bytes(response: httpx.Response, index: int = 0) -> bytes:
    return base64.b64decode(response.json()["data"][index]["b64_json"])


def test_a_valid_request_returns_a_png_of_the_requested_size(sim, client, bearer, open_image) -> None:
    response = post(client, sim, bearer)

    assert response.status_code == 200
    payload = response.json()
    assert isinstance(payload["created"], int)
    assert payload["data"][0]["revised_prompt"] is None
    image = open_image(image_bytes(response))
    assert (image.format, image.size) == ("PNG", (512, 384))


def test_n_images_come_back_each_different(sim, client, bearer) -> None:
    response = post(client, sim, bearer, n=3)

    images = [image_bytes(response, index) for index in range(3)]
    assert len(set(images)) == 3


def test_the_same_seed_gives_the_same_bytes_and_another_seed_differs(sim, client, bearer) -> None:
    first, again = image_bytes(post(client, sim, bearer)), image_bytes(post(client, sim, bearer))
    other = image_bytes(post(client, sim, bearer, seed=8))

    assert first == again
    assert first != other


def test_a_wrong_key_gets_openais_401_envelope(sim, client) -> None:
    response = client.post(sim.base_url + PATH, headers={"Authorization": "Bearer nope"}, json=body())

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert set(error) == {"code", "message", "type"}


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"response_format": "url"}, 400, "invalid_value"),
        ({"steps": 51}, 400, "invalid_value"),
        ({"n": 5}, 400, "invalid_value"),
        ({"prompt": "x" * 4001}, 400, "invalid_value"),
        ({"prompt": ""}, 400, "invalid_value"),
        ({"size": "big"}, 400, "invalid_value"),
        ({"model": "dall-e-3"}, 404, "model_not_found"),
    ],
)
def test_invalid_requests_get_a_4xx_openai_envelope(sim, client, bearer, overrides, status, code) -> None:
    response = post(client, sim, bearer, **overrides)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_a_replayed_idempotency_key_answers_the_first_answer_and_bills_once(sim, client, bearer) -> None:
    headers = {**bearer, "Idempotency-Key": "req-1"}
    first = client.post(sim.base_url + PATH, headers=headers, json=body())
    replay = client.post(sim.base_url + PATH, headers=headers, json=body())
    fresh = client.post(sim.base_url + PATH, headers={**bearer, "Idempotency-Key": "req-2"}, json=body())

    assert (first.status_code, replay.status_code, fresh.status_code) == (200, 200, 200)
    assert replay.content == first.content
    assert sim.billed_creates == 2  # req-1 once, req-2 once


def test_a_key_replayed_with_another_body_gives_409(sim, client, bearer) -> None:
    headers = {**bearer, "Idempotency-Key": "req-1"}
    first = client.post(sim.base_url + PATH, headers=headers, json=body())
    other = client.post(sim.base_url + PATH, headers=headers, json={**body(), "prompt": "something else"})

    assert (first.status_code, other.status_code) == (200, 409)
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_a_key_whose_request_failed_may_be_retried(sim, client, bearer) -> None:
    sim.inject(Fault("status", status=503))
    headers = {**bearer, "Idempotency-Key": "req-retry"}

    assert client.post(sim.base_url + PATH, headers=headers, json=body()).status_code == 503
    assert client.post(sim.base_url + PATH, headers=headers, json=body()).status_code == 200


def test_a_429_carries_retry_after_and_rate_limit_headers(sim, client, bearer) -> None:
    sim.inject(Fault("status", status=429))

    response = post(client, sim, bearer)

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-RateLimit-Limit"] == "60"
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_a_blank_image_fault_answers_solid_black(sim, client, bearer, open_image) -> None:
    sim.inject(Fault("blank_image"))

    image = open_image(image_bytes(post(client, sim, bearer)))

    assert image.convert("RGB").getextrema() == ((0, 0), (0, 0), (0, 0))


def test_url_only_faults_are_refused_for_a_b64_only_vendor(sim) -> None:
    with pytest.raises(ValueError, match="output_404"):
        sim.inject(Fault("output_404"))
