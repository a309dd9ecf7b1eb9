"""Every shape of image response validates in the clients people use: the official ``openai``
SDK's ``ImagesResponse`` and LiteLLM's ``ImageResponse`` (which failed on boltgate's old
``usage`` object of costs: LiteLLM reads ``usage`` as OpenAI's token counts).

The cost is in the ``billing`` object and the ``x-boltgate-*`` headers instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai.types import ImagesResponse as OpenAIImagesResponse

from tests.litellm_offline import ImageResponse as LiteLLMImageResponse
from tests.proxy.api.served_app import Client
from tests.proxy.images.samples import encode

SHAPES = [
    pytest.param("generations", "url", 1, id="generation-url"),
    pytest.param("generations", "b64_json", 1, id="generation-b64"),
    pytest.param("generations", "url", 3, id="generation-url-n3"),
    pytest.param("generations", "b64_json", 4, id="generation-b64-n4"),
    pytest.param("edits", "url", 1, id="edit-url"),
    pytest.param("edits", "b64_json", 2, id="edit-b64-n2"),
]


async def answer(client: Client, endpoint: str, response_format: str, n: int) -> dict[str, Any]:
    fields = {"prompt": "a kite", "n": n, "size": "256x256", "response_format": response_format}
    if endpoint == "generations":
        response = await client.post("/v1/images/generations", json=fields)
    else:
        response = await client.post("/v1/images/edits", files={"image": ("s.png", encode("PNG"), "image/png")},
                                     data={name: str(value) for name, value in fields.items()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("endpoint", "response_format", "n"), SHAPES)
async def test_the_openai_sdk_model_validates_every_shape(client: Client, endpoint: str, response_format: str,
                                                          n: int) -> None:
    body = await answer(client, endpoint, response_format, n)

    parsed = OpenAIImagesResponse.model_validate(body)

    assert parsed.data is not None and len(parsed.data) == n
    assert all(getattr(image, response_format) for image in parsed.data)
    assert parsed.usage is None or parsed.usage.total_tokens >= 0


@pytest.mark.parametrize(("endpoint", "response_format", "n"), SHAPES)
async def test_litellms_model_validates_every_shape(client: Client, endpoint: str, response_format: str,
                                                    n: int) -> None:
    body = await answer(client, endpoint, response_format, n)

    constructed = LiteLLMImageResponse(**body)  # how LiteLLM's OpenAI handlers build it
    validated = LiteLLMImageResponse.model_validate(body)

    for parsed in (constructed, validated):
        assert parsed.data is not None and len(parsed.data) == n
        assert all(getattr(image, response_format) for image in parsed.data)


async def test_usage_is_absent_and_the_cost_is_in_billing(client: Client) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite", "n": 2})
    body = response.json()

    assert "usage" not in body
    assert body["billing"]["images"] == 2
    assert body["billing"]["cost_usd"] == response.headers["x-boltgate-cost-usd"]
    assert body["billing"]["credits"] == response.headers["x-boltgate-credits"]
    assert body["billing"]["upstream_cost_usd"] == response.headers["x-boltgate-upstream-cost-usd"]
