"""The in-process backend: the local pipeline behind the same protocol as every vendor."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backends.base import Backend
from backends.local.config import LocalBackendConfig
from backends.local.inprocess import LocalPipelineBackend
from backends.local.pipeline import LightningPipeline
from core.deadline import Deadline
from core.errors import BackendError, VendorRejectedRequest, VendorTimeout
from core.request import ImageRequest
from tests.backends.local.gated_pipeline import GatedPipeline

MakeRequest = Callable[..., ImageRequest]


def test_is_a_backend_named_local() -> None:
    backend = LocalPipelineBackend.from_options({"preload_steps": "2"}, region="gpu-box")
    assert isinstance(backend, Backend)
    assert (backend.vendor, backend.region) == ("local", "gpu-box")
    assert backend.config.preload_steps == (2,)
    assert backend.capabilities.fixed_steps == frozenset({2})  # only what it loads
    assert backend.capabilities.image_to_image


async def test_generates_through_the_real_loader_and_reports_gpu_seconds(
    tiny_config: LocalBackendConfig, make_request: MakeRequest
) -> None:
    backend = LocalPipelineBackend(tiny_config.model_copy(update={"preload_steps": (1,)}))
    try:
        result = await backend.generate(make_request(n=2, output_format="webp"), Deadline(60))
    finally:
        await backend.aclose()
    assert [image.format for image in result.images] == ["webp", "webp"]
    assert result.run_seconds is not None and result.run_seconds > 0


async def test_the_deadline_bounds_the_wait(make_request: MakeRequest) -> None:
    pipeline = GatedPipeline()
    backend = LocalPipelineBackend(factory=lambda _: pipeline)
    try:
        with pytest.raises(VendorTimeout):
            await backend.generate(make_request(), Deadline(0.2))
    finally:
        pipeline.gate.set()
        await backend.aclose()


async def test_an_unsupported_request_fails_over_rather_than_failing_the_client(
    tiny_pipeline: LightningPipeline, make_request: MakeRequest
) -> None:
    backend = LocalPipelineBackend(factory=lambda _: tiny_pipeline)
    try:
        with pytest.raises(BackendError) as raised:
            await backend.generate(make_request(steps=6), Deadline(10))
        assert raised.value.failover and not isinstance(raised.value, VendorRejectedRequest)
        with pytest.raises(VendorRejectedRequest):
            await backend.generate(make_request(init_image=b"not an image"), Deadline(10))
    finally:
        await backend.aclose()
