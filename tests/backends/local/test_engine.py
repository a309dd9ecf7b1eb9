"""The engine: loads off the event loop, refuses what Lightning cannot serve, then batches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest
from PIL import Image

from backends.local.config import LocalBackendConfig
from backends.local.engine import LOCAL_CAPABILITIES, LocalEngine
from core.errors import InvalidRequest, NotReady, PipelineFailed
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
    assert (raised.value.status_code, raised.value.headers["retry-after"]) == (503, "5")
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


async def test_loading_warming_and_serving_happen_on_one_thread(make_request: MakeRequest) -> None:
    threads: dict[str, int] = {}

    class RecordingPipeline(GatedPipeline):
        def run(self, requests: Sequence[ImageRequest]) -> list[list[Image.Image]]:
            threads["serve"] = threading.get_ident()
            return super().run(requests)

    def factory(_: LocalBackendConfig) -> GatedPipeline:
        threads["load"] = threading.get_ident()  # the real factory warms up here, CUDA graphs included
        pipeline = RecordingPipeline()
        pipeline.gate.set()
        return pipeline

    engine = LocalEngine(LocalBackendConfig(), factory=factory)
    try:
        await engine.start()
        await engine.generate(make_request())
    finally:
        await engine.aclose()
    assert threads["load"] == threads["serve"] != threading.get_ident()


def test_advertises_only_the_step_counts_it_loads() -> None:
    engine = LocalEngine(LocalBackendConfig(preload_steps=(2, 4)), factory=lambda _: GatedPipeline())
    assert engine.capabilities.fixed_steps == frozenset({2, 4})
    assert LocalEngine(LocalBackendConfig(), factory=lambda _: GatedPipeline()).capabilities.fixed_steps == {1, 2, 4, 8}


class _FailingPipeline(GatedPipeline):
    """Fails every call while ``failing`` is set (a wedged GPU), else serves like the gated stand-in."""

    def __init__(self) -> None:
        super().__init__()
        self.gate.set()
        self.failing = threading.Event()
        self.failing.set()

    def run(self, requests: Sequence[ImageRequest]) -> list[list[Image.Image]]:
        if self.failing.is_set():
            self.batches.append(list(requests))
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().run(requests)


async def test_repeated_failures_flip_readiness_then_liveness(make_request: MakeRequest) -> None:
    pipeline = _FailingPipeline()
    config = LocalBackendConfig(unready_after_failures=2, restart_after_failures=3, probe_interval_s=60)
    engine = LocalEngine(config, factory=lambda _: pipeline)
    await engine.start()
    try:
        states = []
        for _ in range(3):
            with pytest.raises(PipelineFailed):
                await engine.generate(make_request())
            states.append((engine.ready, engine.alive))
        assert states == [(True, True), (False, True), (False, False)]
        pipeline.failing.clear()
        await engine.generate(make_request())
        assert (engine.ready, engine.alive) == (True, True)
    finally:
        await engine.aclose()


async def test_a_probe_brings_a_failing_worker_back_without_traffic(make_request: MakeRequest) -> None:
    pipeline = _FailingPipeline()
    config = LocalBackendConfig(unready_after_failures=1, restart_after_failures=100, probe_interval_s=0.02)
    engine = LocalEngine(config, factory=lambda _: pipeline)
    await engine.start()
    try:
        with pytest.raises(PipelineFailed):
            await engine.generate(make_request())
        assert not engine.ready
        while len(pipeline.batches) < 3:  # probes run, and fail while the GPU is wedged
            await asyncio.sleep(0.01)
        assert not engine.ready
        pipeline.failing.clear()
        async with asyncio.timeout(5):
            while not engine.ready:
                await asyncio.sleep(0.01)
        assert pipeline.batches[-1][0].prompt == "health probe"
        assert pipeline.batches[-1][0].width == 256
    finally:
        await engine.aclose()
