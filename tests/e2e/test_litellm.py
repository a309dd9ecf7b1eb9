"""LiteLLM, a client nobody here wrote, generates and edits through the real gateway on loopback.

Its ``image_edit`` used to fail after the gateway had served (and charged) the edit: LiteLLM
validates ``usage`` as OpenAI's token counts, and boltgate's ``usage`` held costs.
"""

from __future__ import annotations

import base64
import io

import pytest

from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.e2e.gateway_server import GatewayServer
from tests.litellm_offline import ImageResponse, litellm
from tests.proxy.images.samples import encode

MODEL = "openai/sdxl-lightning"
"""LiteLLM's OpenAI provider, with the gateway's model name."""


@pytest.fixture
def server(simulator: StartSimulator, gateway: StartGateway) -> GatewayServer:
    """Generations on CallMissed, edits on Eachlabs (the simulator that does image-to-image)."""
    return gateway(route_to(simulator("callmissed"), priority=10), route_to(simulator("eachlabs"), priority=20))


def source_image() -> io.BytesIO:
    upload = io.BytesIO(encode("PNG", side=64))
    upload.name = "source.png"
    return upload


def test_image_generation_answers_b64_images(server: GatewayServer) -> None:
    # LiteLLM refuses ``response_format`` for models it takes for GPT Image ones; extra_body passes it.
    result = litellm.image_generation(model=MODEL, prompt="a red fox", size="256x256", n=2,
                                      api_base=f"{server.base_url}/v1", api_key="unused",
                                      extra_body={"response_format": "b64_json", "seed": 7})

    assert isinstance(result, ImageResponse)
    assert result.data is not None and len(result.data) == 2
    assert all(base64.b64decode(image.b64_json or "")[:8] == b"\x89PNG\r\n\x1a\n" for image in result.data)


def test_image_edit_answers_a_url(server: GatewayServer) -> None:
    result = litellm.image_edit(model=MODEL, image=source_image(), prompt="make it autumn", size="256x256",
                                api_base=f"{server.base_url}/v1", api_key="unused")

    assert isinstance(result, ImageResponse)
    assert result.data is not None and len(result.data) == 1
    assert (result.data[0].url or "").startswith(f"{server.base_url}/v1/images/files/")


async def test_aimage_edit_answers_a_url(server: GatewayServer) -> None:
    result = await litellm.aimage_edit(model=MODEL, image=source_image(), prompt="make it autumn", size="256x256",
                                       api_base=f"{server.base_url}/v1", api_key="unused")

    assert isinstance(result, ImageResponse)
    assert result.data is not None and len(result.data) == 1
    assert (result.data[0].url or "").startswith(f"{server.base_url}/v1/images/files/")
