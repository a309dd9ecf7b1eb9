"""Streaming through the official openai SDK against the real gateway on loopback, generations
and edits alike: partial images from the local pipeline (the tiny model), the completed image
alone from a vendor, charged once on completion, a failure after the first event an ``error``
event that charges nothing, and a client that leaves charged nothing."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import base64
import io
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import torch
from openai import OpenAI
from openai.types import (
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
)
from PIL import Image

from backends.local.config import LocalBackendConfig
from backends.local.engine import ServingPipeline
from backends.local.inprocess import LocalPipelineBackend
from backends.local.partial_images import PreviewRequest
from backends.local.pipeline import load_warm_pipeline
from backends.local.tiny import make_tiny_model
from core.request import ImageRequest
from proxy.api.app import create_app
from proxy.routing.route import Route
from proxy.settings import RouteConfig, Settings
from proxy.wiring import Overrides
from tests.asgi_server import AsgiServer
from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.torch_threads import TORCH_THREADS

torch.set_num_threads(TORCH_THREADS)
pytestmark = pytest.mark.local

KEY = "bg-stream"
KEYS = {KEY: {"name": "stream", "budget_credits": "100"}}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-stream"))


def local_options(model: Path) -> dict[str, str]:
    return {"model_dir": str(model), "preload_steps": "4", "warmup_sizes": "256x256"}


def sdk(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0, timeout=120)


def spent(base_url: str) -> Decimal:
    usage = httpx.get(f"{base_url}/v1/usage", headers={"Authorization": f"Bearer {KEY}"}).json()
    return Decimal(usage["spent_usd"])


def png(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert image.format == "PNG"
    return image


def stream(client: OpenAI, partial_images: int, **extra: Any) -> list[Any]:
    events = client.images.generate(model="sdxl-lightning", prompt="a lighthouse at dusk", size="256x256",
                                    stream=True, partial_images=partial_images, extra_body={"steps": 4, **extra})
    return list(events)


def source_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (30, 90, 200)).save(out, format="PNG")
    return out.getvalue()


EDIT_STRENGTH = 0.75
"""Three of the four distilled steps run: room for two partial images before the last."""


def stream_edit(client: OpenAI, partial_images: int) -> Any:
    return client.images.edit(image=("in.png", source_png(), "image/png"), prompt="make it a night sky",
                              size="256x256", stream=True, partial_images=partial_images,
                              extra_body={"steps": 4, "strength": EDIT_STRENGTH})


def test_the_local_pipeline_streams_partial_images_then_the_image(tiny_model: Path, gateway: StartGateway) -> None:
    server = gateway(RouteConfig(vendor="local", options=local_options(tiny_model)), api_keys=KEYS)

    events = stream(sdk(server.base_url), partial_images=2)

    assert [type(event) for event in events] == [ImageGenPartialImageEvent, ImageGenPartialImageEvent,
                                                 ImageGenCompletedEvent]
    partials, completed = events[:2], events[2]
    assert [event.partial_image_index for event in partials] == [0, 1]
    for event in partials:
        assert png(event.b64_json).size == (256, 256)
        assert (event.size, event.output_format) == ("256x256", "png")
    assert len({event.b64_json for event in events}) == 3
    assert png(completed.b64_json).size == (256, 256)
    assert completed.usage.total_tokens == 0  # OpenAI's token shape; the money is in billing
    billing = completed.model_extra["billing"] if completed.model_extra else {}
    cost = Decimal(billing["cost_usd"])
    assert cost > 0 and spent(server.base_url) == cost


def test_an_edit_streams_partial_images_then_the_image_as_image_edit_events(tiny_model: Path,
                                                                           gateway: StartGateway) -> None:
    server = gateway(RouteConfig(vendor="local", options=local_options(tiny_model)), api_keys=KEYS)

    events = list(stream_edit(sdk(server.base_url), partial_images=2))

    assert [type(event) for event in events] == [ImageEditPartialImageEvent, ImageEditPartialImageEvent,
                                                 ImageEditCompletedEvent]
    assert [event.type for event in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    assert [event.partial_image_index for event in events[:2]] == [0, 1]
    assert len({event.b64_json for event in events}) == 3
    for event in events:
        assert png(event.b64_json).size == (256, 256)
    completed = events[2]
    billing = completed.model_extra["billing"] if completed.model_extra else {}
    assert spent(server.base_url) == Decimal(billing["cost_usd"]) > 0


def test_a_vendor_streams_an_edit_as_the_completed_event_alone(simulator: StartSimulator,
                                                               gateway: StartGateway) -> None:
    vendor = simulator("eachlabs")
    server = gateway(route_to(vendor), api_keys=KEYS)

    events = list(stream_edit(sdk(server.base_url), partial_images=3))

    assert [type(event) for event in events] == [ImageEditCompletedEvent]
    assert png(events[0].b64_json).size == (256, 256)
    assert spent(server.base_url) == Decimal(events[0].model_extra["billing"]["cost_usd"]) > 0
    created = next(r for r in vendor.requests if r.method == "POST")
    assert created.json["input"]["image"].startswith("data:image/png;base64,")


def test_a_vendor_streams_the_completed_image_alone(simulator: StartSimulator, gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("callmissed")), api_keys=KEYS)

    events = stream(sdk(server.base_url), partial_images=3)

    assert [type(event) for event in events] == [ImageGenCompletedEvent]
    assert png(events[0].b64_json).size == (256, 256)
    assert spent(server.base_url) == Decimal(events[0].model_extra["billing"]["cost_usd"]) > 0


def test_errors_before_the_first_event_are_plain_http_errors(simulator: StartSimulator,
                                                              gateway: StartGateway) -> None:
    vendor = simulator("callmissed")
    server = gateway(route_to(vendor), api_keys={**KEYS, "bg-broke": {"name": "broke", "budget_credits": "0"}})
    url = f"{server.base_url}/v1/images/generations"
    body = {"prompt": "a kite", "size": "256x256", "stream": True}

    broke = OpenAI(base_url=f"{server.base_url}/v1", api_key="bg-broke", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        list(broke.images.generate(prompt="a kite", size="256x256", stream=True))
    assert refused.value.status_code == 402
    auth = {"Authorization": f"Bearer {KEY}"}
    too_many = httpx.post(url, json={**body, "partial_images": 4}, headers=auth)
    two = httpx.post(url, json={**body, "n": 2}, headers=auth)
    linked = httpx.post(url, json={**body, "response_format": "url"}, headers=auth)
    not_streamed = httpx.post(url, json={"prompt": "a kite", "partial_images": 2}, headers=auth)

    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "partial_images"
    assert two.status_code == 400 and two.json()["error"]["param"] == "n"
    assert linked.status_code == 400 and linked.json()["error"]["param"] == "response_format"
    assert not_streamed.status_code == 400 and not_streamed.json()["error"]["param"] == "partial_images"
    assert vendor.requests == []


class FailsAfterPreviews:
    """The real tiny pipeline, which then fails as a GPU would (after the partial images went out)."""

    def __init__(self, pipeline: ServingPipeline) -> None:
        self.pipeline = pipeline
        self.device = pipeline.device

    def run(self, requests: Sequence[ImageRequest]) -> Any:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def run_with_previews(self, requests: Sequence[ImageRequest], previews: Sequence[PreviewRequest | None]) -> Any:
        self.pipeline.run_with_previews(requests, previews)  # type: ignore[attr-defined]
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def memory_bytes(self) -> int:
        return 0

    def eager_fallbacks(self) -> dict[tuple[str, str], int]:
        return {}


class WaitsAfterPreviews(FailsAfterPreviews):
    """The real tiny pipeline, which then holds its images until the test opens the gate."""

    def __init__(self, pipeline: ServingPipeline) -> None:
        super().__init__(pipeline)
        self.gate = threading.Event()

    def run_with_previews(self, requests: Sequence[ImageRequest], previews: Sequence[PreviewRequest | None]) -> Any:
        images = self.pipeline.run_with_previews(requests, previews)  # type: ignore[attr-defined]
        assert self.gate.wait(60), "the test never opened the gate"
        return images


GatewayOn = Callable[[Callable[[ServingPipeline], FailsAfterPreviews]], tuple[AsgiServer, LocalPipelineBackend]]


@pytest.fixture
def gateway_on(tiny_model: Path) -> Iterator[GatewayOn]:
    """The real gateway whose only route is the in-process pipeline, wrapped as the test says."""
    started: list[AsgiServer] = []

    def start(wrap: Callable[[ServingPipeline], FailsAfterPreviews]) -> tuple[AsgiServer, LocalPipelineBackend]:
        config = LocalBackendConfig.from_options(local_options(tiny_model))
        backend = LocalPipelineBackend(config, factory=lambda c: wrap(load_warm_pipeline(c)))
        routes = [Route(backend, max_attempts=1, account="0:local")]
        app = create_app(Settings(simulators="off", state_backend="memory", api_keys=KEYS), Overrides(routes=routes))  # type: ignore[arg-type]
        server = AsgiServer(app, name="gateway-local-stream").start()
        started.append(server)
        return server, backend

    yield start
    for server in started:
        server.stop()


def test_a_failure_after_the_first_event_is_an_error_event_and_charges_nothing(gateway_on: GatewayOn) -> None:
    server, _ = gateway_on(FailsAfterPreviews)
    seen: list[Any] = []

    with pytest.raises(openai.APIError) as failed:
        for event in sdk(server.url).images.generate(model="sdxl-lightning", prompt="a lighthouse", size="256x256",
                                                     stream=True, partial_images=3, extra_body={"steps": 4}):
            seen.append(event)

    assert [type(event) for event in seen] == [ImageGenPartialImageEvent] * 3
    assert isinstance(failed.value.body, dict) and failed.value.body["code"] == "no_backend_available"
    assert spent(server.url) == 0


def test_an_edit_that_fails_after_its_first_event_is_an_error_event_and_charges_nothing(
        gateway_on: GatewayOn) -> None:
    server, _ = gateway_on(FailsAfterPreviews)
    seen: list[Any] = []

    with pytest.raises(openai.APIError) as failed:
        for event in stream_edit(sdk(server.url), partial_images=2):
            seen.append(event)

    assert [type(event) for event in seen] == [ImageEditPartialImageEvent] * 2
    assert isinstance(failed.value.body, dict) and failed.value.body["code"] == "no_backend_available"
    assert spent(server.url) == 0


def usage(base_url: str) -> dict[str, Any]:
    return httpx.get(f"{base_url}/v1/usage", headers={"Authorization": f"Bearer {KEY}"}).json()  # type: ignore[no-any-return]


STREAMED_REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "generation": ("/v1/images/generations", {"json": {"prompt": "a lighthouse", "size": "256x256", "steps": 4,
                                                       "stream": True, "partial_images": 2}}),
    "edit": ("/v1/images/edits", {"files": {"image": ("in.png", source_png(), "image/png")},
                                  "data": {"prompt": "a lighthouse", "size": "256x256", "steps": "4",
                                           "strength": str(EDIT_STRENGTH), "stream": "true", "partial_images": "2"}}),
}


@pytest.mark.parametrize(("kind", "first_event"), [("generation", "image_generation.partial_image"),
                                                   ("edit", "image_edit.partial_image")])
def test_a_client_that_leaves_mid_stream_releases_its_hold_and_is_not_charged(kind: str, first_event: str,
                                                                              gateway_on: GatewayOn) -> None:
    pipelines: list[WaitsAfterPreviews] = []

    def held(pipeline: ServingPipeline) -> WaitsAfterPreviews:
        pipelines.append(WaitsAfterPreviews(pipeline))
        return pipelines[-1]

    server, backend = gateway_on(held)
    path, body = STREAMED_REQUESTS[kind]
    with httpx.stream("POST", f"{server.url}{path}", timeout=120, headers={"Authorization": f"Bearer {KEY}"},
                      **body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()  # kept: dropping the iterator closes the connection
        assert next(lines) == f"event: {first_event}"
        assert Decimal(usage(server.url)["reserved_usd"]) > 0  # held while the image is made

    give_up = time.monotonic() + 30
    while Decimal(usage(server.url)["reserved_usd"]) > 0:  # the gateway saw the client leave
        assert time.monotonic() < give_up, "the hold of a stream whose client left was never released"
        time.sleep(0.05)
    pipelines[0].gate.set()
    batcher = backend.engine.batcher
    assert batcher is not None
    while batcher.stats.batches_total < 1:  # the batch the client left finishes, unread
        assert time.monotonic() < give_up
        time.sleep(0.05)
    assert usage(server.url)["spent_usd"] == "0.000000" and usage(server.url)["images"] == 0


def test_an_edit_refuses_what_a_stream_cannot_carry_before_any_event(simulator: StartSimulator,
                                                                     gateway: StartGateway) -> None:
    vendor = simulator("eachlabs")
    server = gateway(route_to(vendor), api_keys=KEYS)
    auth = {"Authorization": f"Bearer {KEY}"}

    def edit(**fields: str) -> httpx.Response:
        return httpx.post(f"{server.base_url}/v1/images/edits", headers=auth,
                          files={"image": ("in.png", source_png(), "image/png")},
                          data={"prompt": "a kite", "size": "256x256", **fields})

    for fields, param in (({"stream": "true", "partial_images": "4"}, "partial_images"),
                          ({"stream": "true", "n": "2"}, "n"),
                          ({"stream": "true", "response_format": "url"}, "response_format"),
                          ({"partial_images": "2"}, "partial_images"),
                          ({"stream": "yes"}, "stream")):
        refused = edit(**fields)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param, (fields, refused.text)
    assert vendor.requests == []
