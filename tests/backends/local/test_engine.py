"""The engine: loads off the event loop, refuses what Lightning cannot serve, then batches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from backends.local.config import LocalBackendConfig
from backends.local.engine import LOCAL_CAPABILITIES, LocalEngine
from core.errors import InvalidRequest, NotReady
from core.request import ImageRequest
from tests.backends.local.gated_pipeline import GatedPipeline

MakeRequest = Callable[..., ImageRequest]


def test_capabilities_are_the_lightning_checkpoints() -> None:
    assert LOCAL_CAPABILITIES.fixed_steps == frozenset({1, 2, 4, 8})
    assert LOCAL_CAPABILITIES.max_steps == 8
    assert LOCAL_CAPABILITIES.image_to_image
    assert LOCAL_CAPABILITIES.max_side == 1536
    assert LOCAL_CAPABILITIES.output_formats == {"png", "jpeg", "webp"}


async def test_refuses_a_step_count_without_a_checkpoint(make_request: MakeRequest) -> None:
    engine = LocalEngine(LocalBackendConfig(), factory=lambda _: GatedPipeline())
    with pytest.raises(InvalidRequest, match="steps 3 not in") as raised:
        await engine.generate(make_request(steps=3))
    assert raised.value.param == "steps"


async def test_is_not_ready_while_loading_and_serves_once_loaded(make_request: MakeRequest) -> None:
    loaded = threading.Event()
    pipeline = GatedPipeline()
    pipeline.gate.set()

    def slow_factory(_: LocalBackendConfig) -> GatedPipeline:
        loaded.wait(5)
        return pipeline

    engine = LocalEngine(LocalBackendConfig(), factory=slow_factory)
    assert engine.load_state == "loading"
    loading = engine.start_in_background()
    with pytest.raises(NotReady) as raised:
        await engine.generate(make_request())
    assert (raised.value.status_code, raised.value.headers["Retry-After"]) == (503, "5")
    loaded.set()
    await loading
    assert engine.ready and engine.device == "cpu"
    assert engine.load_state == "ready"
    outcome = await engine.generate(make_request(n=2))
    assert len(outcome.images) == 2
    await engine.aclose()


async def test_a_failed_load_is_reported_not_raised_into_the_loop(make_request: MakeRequest) -> None:
    def broken(_: LocalBackendConfig) -> GatedPipeline:
        raise FileNotFoundError("no base/ under /nowhere")

    engine = LocalEngine(LocalBackendConfig(), factory=broken)
    await asyncio.wait_for(engine.start_in_background(), 5)
    assert not engine.ready and isinstance(engine.load_error, FileNotFoundError)
    assert engine.load_state == "failed"
    with pytest.raises(NotReady, match="failed to load"):
        await engine.start()
    with pytest.raises(NotReady, match="no base/"):
        await engine.generate(make_request())
