"""Dynamic batching: compatible requests share a pipeline call, each gets its own images back."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import torch
from PIL import Image

from backends.base import sniff_format
from backends.local.batching import BatchOutcome, BatchPipeline, DynamicBatcher
from backends.local.encoding import RawImage
from backends.local.pipeline import LightningPipeline
from backends.local.worker_metrics import WorkerMetrics
from core.deadline import Deadline
from core.errors import InvalidRequest, QueueFull, VendorTimeout, VendorUnavailable
from core.request import ImageRequest
from tests.backends.local.gated_pipeline import GatedPipeline
from tests.backends.local.image_compare import same_up_to_rounding

MakeRequest = Callable[..., ImageRequest]
MakeBatcher = Callable[..., DynamicBatcher]


@pytest.fixture
async def make_batcher() -> AsyncIterator[MakeBatcher]:
    made: list[DynamicBatcher] = []

    def make(pipeline: BatchPipeline, **limits: float) -> DynamicBatcher:
        settings: dict[str, float] = {"max_batch_size": 4, "batch_window_ms": 150.0, "max_queue": 64, **limits}
        batcher = DynamicBatcher(pipeline, max_batch_size=int(settings["max_batch_size"]),
                                 batch_window_ms=settings["batch_window_ms"], max_queue=int(settings["max_queue"]))
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        await batcher.aclose()


def _decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


async def test_concurrent_compatible_requests_run_as_one_batch(
    tiny_pipeline: LightningPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(tiny_pipeline)
    outcomes = await asyncio.gather(*(batcher.submit(make_request(seed=seed)) for seed in (1, 2, 3)))
    assert batcher.stats.batch_sizes == [3]
    assert [outcome.batch_size for outcome in outcomes] == [3, 3, 3]
    assert [len(outcome.images) for outcome in outcomes] == [1, 1, 1]
    assert batcher.stats.images_total == 3
    assert sum(o.gpu_seconds for o in outcomes) == pytest.approx(batcher.stats.gpu_seconds_total)


async def test_incompatible_requests_are_not_merged(
    tiny_pipeline: LightningPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(tiny_pipeline)
    requests = [make_request(seed=1), make_request(seed=2, height=320), make_request(seed=3)]
    outcomes = await asyncio.gather(*(batcher.submit(request) for request in requests))
    assert sorted(batcher.stats.batch_sizes) == [1, 2]
    assert _decoded(outcomes[1].images[0]).size == (256, 320)


async def test_a_batched_result_equals_the_unbatched_one(
    tiny_pipeline: LightningPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(tiny_pipeline)
    mine = make_request(seed=99, n=2, prompt="a red bicycle")
    batched = await asyncio.gather(batcher.submit(make_request(seed=5)), batcher.submit(mine))
    assert batcher.stats.batch_sizes == [3]
    alone = await make_batcher(tiny_pipeline, batch_window_ms=0).submit(mine)
    assert alone.batch_size == 2
    for together, by_itself in zip(batched[1].images, alone.images, strict=True):
        assert same_up_to_rounding(_decoded(together), _decoded(by_itself))


async def test_each_request_gets_its_own_output_format(
    tiny_pipeline: LightningPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(tiny_pipeline)
    formats = ["png", "jpeg", "webp"]
    outcomes = await asyncio.gather(*(batcher.submit(make_request(output_format=fmt)) for fmt in formats))
    assert batcher.stats.batch_sizes == [3]
    assert [sniff_format(outcome.images[0][:16]) for outcome in outcomes] == formats


async def test_a_batch_never_exceeds_max_batch_size_images(
    gated_pipeline: GatedPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    gated_pipeline.gate.set()
    batcher = make_batcher(gated_pipeline, max_batch_size=4)
    requests = [make_request(seed=seed, n=n) for seed, n in ((1, 2), (2, 3), (3, 2), (4, 1))]
    outcomes = await asyncio.gather(*(batcher.submit(request) for request in requests))
    assert [[r.seed for r in batch] for batch in gated_pipeline.batches] == [[1, 3], [2, 4]]
    assert [len(outcome.images) for outcome in outcomes] == [2, 3, 2, 1]


async def test_gpu_seconds_are_shared_by_image_count(
    gated_pipeline: GatedPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    gated_pipeline.gate.set()
    batcher = make_batcher(gated_pipeline)
    one, three = await asyncio.gather(batcher.submit(make_request(n=1)), batcher.submit(make_request(n=3)))
    assert three.gpu_seconds == pytest.approx(3 * one.gpu_seconds)
    assert one.gpu_seconds + three.gpu_seconds == pytest.approx(batcher.stats.gpu_seconds_total)


async def test_edits_run_alone(
    gated_pipeline: GatedPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    gated_pipeline.gate.set()
    batcher = make_batcher(gated_pipeline)
    init = io.BytesIO()
    Image.new("RGB", (8, 8)).save(init, format="PNG")
    edit = make_request(init_image=init.getvalue())
    await asyncio.gather(batcher.submit(edit), batcher.submit(edit), batcher.submit(make_request()))
    assert sorted(len(batch) for batch in gated_pipeline.batches) == [1, 1, 1]


async def test_a_full_queue_refuses_at_once_with_retry_after(
    gated_pipeline: GatedPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(gated_pipeline, max_batch_size=1, batch_window_ms=0, max_queue=2)
    metrics = WorkerMetrics()
    batcher.observer = metrics
    running = asyncio.create_task(batcher.submit(make_request(seed=1)))
    await asyncio.to_thread(gated_pipeline.started.wait, 5)
    waiting = [asyncio.create_task(batcher.submit(make_request(seed=seed))) for seed in (2, 3)]
    await asyncio.sleep(0)
    assert batcher.queue_depth == 2
    with pytest.raises(QueueFull) as raised:
        await batcher.submit(make_request(seed=4))
    assert isinstance(raised.value, VendorUnavailable)
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1
    assert raised.value.headers["retry-after"].isdigit()
    assert (raised.value.status_code, raised.value.code) == (503, "queue_full")
    assert metrics.registry.get_sample_value("boltgate_worker_queue_rejections_total") == 1
    gated_pipeline.gate.set()
    await asyncio.gather(running, *waiting)
    assert batcher.queue_depth == 0


async def test_a_request_that_gives_up_leaves_the_queue(
    gated_pipeline: GatedPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(gated_pipeline, max_batch_size=1, batch_window_ms=0)
    running = asyncio.create_task(batcher.submit(make_request(seed=1)))
    await asyncio.to_thread(gated_pipeline.started.wait, 5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(batcher.submit(make_request(seed=2)), 0.05)
    assert batcher.queue_depth == 0
    gated_pipeline.gate.set()
    await running
    assert [[r.seed for r in batch] for batch in gated_pipeline.batches] == [[1]]


async def test_a_failing_batch_is_unavailable_and_the_batcher_goes_on(
    make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    class FailsOnce:
        calls = 0

        def run(self, requests: Sequence[ImageRequest]) -> list[list[Image.Image]]:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("CUDA out of memory")
            return [[Image.new("RGB", (8, 8))] for _ in requests]

    batcher = make_batcher(FailsOnce())
    with pytest.raises(VendorUnavailable, match="out of memory"):
        await batcher.submit(make_request())
    assert len((await batcher.submit(make_request())).images) == 1


async def test_closing_fails_the_running_and_waiting_requests(
    gated_pipeline: GatedPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(gated_pipeline, max_batch_size=1, batch_window_ms=0)
    running = asyncio.create_task(batcher.submit(make_request(seed=1)))
    await asyncio.to_thread(gated_pipeline.started.wait, 5)
    waiting = asyncio.create_task(batcher.submit(make_request(seed=2)))
    await asyncio.sleep(0)
    await batcher.aclose()
    for task in (running, waiting):
        with pytest.raises(VendorUnavailable, match="stopped"):
            await asyncio.wait_for(task, 5)
    with pytest.raises(VendorUnavailable, match="shutting down"):
        await batcher.submit(make_request())


class _OutOfMemoryOn:
    """The tiny pipeline, except that any call holding the request with ``guilty`` prompt runs out of memory."""

    def __init__(self, pipeline: LightningPipeline, guilty: str) -> None:
        self.pipeline = pipeline
        self.guilty = guilty
        self.calls: list[list[int]] = []

    def run(self, requests: Sequence[ImageRequest]) -> list[list[RawImage]]:
        self.calls.append([request.seed for request in requests])
        if any(request.prompt == self.guilty for request in requests):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.50 GiB")
        return self.pipeline.run(requests)


async def test_an_out_of_memory_batch_of_four_fails_only_the_guilty_request(
    tiny_pipeline: LightningPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    pipeline = _OutOfMemoryOn(tiny_pipeline, guilty="a very large request")
    batcher = make_batcher(pipeline)
    metrics = WorkerMetrics()
    batcher.observer = metrics
    requests = [make_request(seed=1), make_request(seed=2), make_request(seed=3, prompt="a very large request"),
                make_request(seed=4)]
    outcomes = await asyncio.gather(*(batcher.submit(request) for request in requests), return_exceptions=True)
    assert [type(outcome).__name__ for outcome in outcomes] == ["BatchOutcome", "BatchOutcome", "PipelineFailed",
                                                                "BatchOutcome"]
    assert "out of memory" in str(outcomes[2])
    assert pipeline.calls == [[1, 2, 3, 4], [1, 2], [3, 4], [3], [4]]
    assert [outcome.batch_size for outcome in outcomes if isinstance(outcome, BatchOutcome)] == [2, 2, 1]
    assert batcher.health.consecutive == 0  # the last call succeeded
    assert metrics.registry.get_sample_value("boltgate_worker_pipeline_failures_total") == 1


async def test_a_request_s_own_error_fails_it_without_counting_against_the_worker(
    tiny_pipeline: LightningPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(tiny_pipeline)
    with pytest.raises(InvalidRequest):
        await batcher.submit(make_request(init_image=b"not an image"))
    assert batcher.health.consecutive == 0


async def test_a_request_whose_deadline_passed_while_queued_never_runs(
    gated_pipeline: GatedPipeline, make_batcher: MakeBatcher, make_request: MakeRequest
) -> None:
    batcher = make_batcher(gated_pipeline, max_batch_size=1, batch_window_ms=0)
    metrics = WorkerMetrics()
    batcher.observer = metrics
    running = asyncio.create_task(batcher.submit(make_request(seed=1)))
    await asyncio.to_thread(gated_pipeline.started.wait, 5)
    late = asyncio.create_task(batcher.submit(make_request(seed=2), Deadline(0.05)))
    in_time = asyncio.create_task(batcher.submit(make_request(seed=3), Deadline(30)))
    await asyncio.sleep(0.1)
    gated_pipeline.gate.set()
    with pytest.raises(VendorTimeout, match="deadline passed before its batch ran"):
        await late
    await asyncio.gather(running, in_time)
    assert [[r.seed for r in batch] for batch in gated_pipeline.batches] == [[1], [3]]
    assert metrics.registry.get_sample_value("boltgate_worker_dropped_total", {"reason": "expired"}) == 1
