"""``GET /v1/models``: the one model under every name the vendors use for it."""

from __future__ import annotations

import pytest

from core.request import MODEL_ALIASES
from tests.proxy.api.served_app import Client


async def test_the_list_names_the_canonical_model_first_and_every_alias(client: Client) -> None:
    response = await client.get("/v1/models")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = [model["id"] for model in body["data"]]
    assert ids[0] == "sdxl-lightning"
    assert set(ids) == MODEL_ALIASES
    assert {"sdxl-lightning-4step", "sd-xl-lightning", "bytedance/stable-diffusion-xl-lightning"} <= set(ids)
    assert all(model["object"] == "model" and model["root"] == "sdxl-lightning" for model in body["data"])


@pytest.mark.parametrize("name", ["sdxl-lightning", "bytedance/stable-diffusion-xl-lightning", "SDXL-Lightning-4step"])
async def test_one_model_is_retrieved_by_any_alias(client: Client, name: str) -> None:
    response = await client.get(f"/v1/models/{name}")

    assert response.status_code == 200
    assert response.json()["id"] == name
    assert response.json()["root"] == "sdxl-lightning"


async def test_an_unknown_model_is_a_404_model_not_found(client: Client) -> None:
    response = await client.get("/v1/models/dall-e-3")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert response.json()["error"]["param"] == "model"
    assert "sdxl-lightning" in response.json()["error"]["message"]  # names what is served instead
