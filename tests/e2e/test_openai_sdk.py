"""The official openai SDK works unchanged with base_url pointed at the gateway."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from openai import OpenAI
from PIL import Image

from backends.simulators import Fault
from tests.e2e.conftest import StartGateway, StartSimulator, route_to


def test_sdk_generates_with_b64_json_and_url(simulator: StartSimulator, gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("callmissed")))
    client = OpenAI(base_url=f"{server.base_url}/v1", api_key="anything", max_retries=0)

    inline = client.images.generate(model="sdxl-lightning", prompt="a red fox", size="512x512",
                                    response_format="b64_json", extra_body={"seed": 42, "steps": 4})
    assert inline.data is not None and inline.data[0].b64_json
    image = Image.open(io.BytesIO(base64.b64decode(inline.data[0].b64_json)))
    assert image.size == (512, 512)

    linked = client.images.generate(model="sdxl-lightning-4step", prompt="a red fox", size="512x512",
                                    response_format="url", extra_body={"seed": 42})
    assert linked.data is not None and linked.data[0].url
    assert linked.data[0].url.startswith(f"{server.base_url}/v1/images/files/")
    download = httpx.get(linked.data[0].url)
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(download.content)).size == (512, 512)


def test_sdk_honours_output_format_and_n(simulator: StartSimulator, gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("callmissed")))
    client = OpenAI(base_url=f"{server.base_url}/v1", api_key="anything", max_retries=0)
    result = client.images.generate(model="bytedance/stable-diffusion-xl-lightning", prompt="two owls", n=2,
                                    size="256x256", response_format="b64_json", output_format="webp")
    assert result.data is not None and len(result.data) == 2
    for item in result.data:
        assert item.b64_json is not None
        assert Image.open(io.BytesIO(base64.b64decode(item.b64_json))).format == "WEBP"


def test_sdk_sees_openai_errors(simulator: StartSimulator, gateway: StartGateway) -> None:
    import openai

    server = gateway(route_to(simulator("callmissed")))
    client = OpenAI(base_url=f"{server.base_url}/v1", api_key="anything", max_retries=0)
    try:
        client.images.generate(model="dall-e-3", prompt="x")
    except openai.NotFoundError as error:
        assert error.code == "model_not_found"
    else:
        raise AssertionError("an unknown model must be refused")


def test_sdk_raises_rate_limit_error_when_every_vendor_rate_limits(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    import openai

    callmissed, aigateway = simulator("callmissed"), simulator("aigateway")
    callmissed.inject(Fault(kind="status", status=429, headers={"Retry-After": "9"}, times=None))
    aigateway.inject(Fault(kind="status", status=429, headers={"Retry-After": "4"}, times=None))
    server = gateway(route_to(callmissed, priority=1), route_to(aigateway, priority=2),
                     retry={"backoff_initial_s": 0.01, "backoff_max_s": 0.01, "jitter_s": 0, "max_retry_after_s": 1})
    client = OpenAI(base_url=f"{server.base_url}/v1", api_key="anything", max_retries=0)

    with pytest.raises(openai.RateLimitError) as raised:
        client.images.generate(model="sdxl-lightning", prompt="a red fox", size="256x256")

    assert raised.value.status_code == 429
    assert raised.value.code == "upstream_rate_limited"
    assert raised.value.response.headers["retry-after"] == "4"
    assert len(callmissed.requests) == 1 and len(aigateway.requests) == 1  # a 4 s wait is not worth holding
