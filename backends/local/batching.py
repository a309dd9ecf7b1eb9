"""Dynamic batching: compatible requests arriving close together run as one pipeline call.

A GPU serves four 1024x1024 images in one call in much less than four times the time of one, so
requests with the same ``(width, height, steps)`` that arrive within ``batch_window_ms`` of the
first are merged, up to ``max_batch_size`` images; image-to-image requests run alone. Each image
keeps its own seeded generator, so a request's images do not depend on its batch-mates.

The pipeline runs on one dedicated thread (never on the event loop), one batch at a time; while
it runs, new requests queue up and form the next batch. Encoding to PNG/JPEG/WebP happens on
other threads so the GPU can start the next batch at once. A full queue refuses at once with
``QueueFull`` (a ``VendorUnavailable``: 503 plus Retry-After) so the router fails over instead
of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from backends.local.encoding import AnyImage, encode_image
from backends.local.health import FailureStreak
from core.deadline import Deadline
from core.errors import BoltgateError, PipelineFailed, QueueFull, VendorTimeout, VendorUnavailable
from core.request import ImageRequest

log = logging.getLogger(__name__)


class BatchPipeline(Protocol):
    """What the batcher drives: one blocking call per batch, each request's images in order."""

    def run(self, requests: Sequence[ImageRequest]) -> Sequence[Sequence[AnyImage]]: ...


class BatchKey(NamedTuple):
    width: int
    height: int
    steps: int
    is_edit: bool

    @classmethod
    def of(cls, request: ImageRequest) -> BatchKey:
        return cls(request.width, request.height, request.steps, request.is_edit)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One request's share of a batch."""

    images: list[bytes]
    gpu_seconds: float
    """The batch's pipeline time times this request's share of its images."""
    batch_size: int
    """Images in the pipeline call that served this request."""


@dataclass(frozen=True, slots=True)
class BatchRecord:
    requests: int
    images: int
    seconds: float


class BatchObserver(Protocol):
    """Receives the batcher's measurements (the worker turns them into Prometheus metrics)."""

    def queue_depth_changed(self, depth: int) -> None: ...

    def batch_finished(self, record: BatchRecord, images_per_second: float) -> None: ...

    def queue_rejected(self) -> None:
        """A request was turned away because the queue was full (the router fails over)."""

    def pipeline_failed(self) -> None:
        """A request failed alone in the pipeline (after its batch was split): the worker's fault."""

    def request_dropped(self, reason: str) -> None:
        """A request left its batch unrun: ``cancelled`` (its caller left) or ``expired`` (its deadline)."""


@dataclass(slots=True)
class BatchStats:
    """Counters over the batcher's life, plus its recent batches (for throughput and tests)."""

    recent: deque[BatchRecord] = field(default_factory=lambda: deque(maxlen=64))
    batches_total: int = 0
    images_total: int = 0
    gpu_seconds_total: float = 0.0

    def add(self, record: BatchRecord) -> None:
        self.recent.append(record)
        self.batches_total += 1
        self.images_total += record.images
        self.gpu_seconds_total += record.seconds

    @property
    def batch_sizes(self) -> list[int]:
        return [record.images for record in self.recent]

    def images_per_second(self) -> float:
        """Images per pipeline-second over the recent batches: what the device delivers when busy."""
        seconds = sum(record.seconds for record in self.recent)
        return sum(record.images for record in self.recent) / seconds if seconds > 0 else 0.0

    def mean_batch_seconds(self) -> float:
        return sum(r.seconds for r in self.recent) / len(self.recent) if self.recent else 1.0


@dataclass(eq=False, slots=True)
class _Waiting:
    request: ImageRequest
    key: BatchKey
    future: asyncio.Future[BatchOutcome]
    enqueued_at: float
    deadline: Deadline | None


class DynamicBatcher:
    """Queue of requests in front of one pipeline; ``submit`` returns the request's images."""

    def __init__(self, pipeline: BatchPipeline, *, max_batch_size: int = 4, batch_window_ms: float = 10.0,
                 max_queue: int = 64, observer: BatchObserver | None = None, encoder_threads: int = 4,
                 gpu_thread: ThreadPoolExecutor | None = None, health: FailureStreak | None = None) -> None:
        """``gpu_thread``: the one-thread executor that loaded and warmed the pipeline (CUDA graphs and
        memory pools belong to a thread); by default the batcher starts its own (and stops it)."""
        self.pipeline = pipeline
        self.max_batch_size = max_batch_size
        self.window_s = batch_window_ms / 1000.0
        self.max_queue = max_queue
        self.observer = observer
        self.stats = BatchStats()
        self.health = health or FailureStreak()
        self._waiting: deque[_Waiting] = deque()
        self._arrived = asyncio.Event()
        self._owns_gpu_thread = gpu_thread is None
        self._gpu = gpu_thread or ThreadPoolExecutor(max_workers=1, thread_name_prefix="boltgate-gpu")
        self._encoders = ThreadPoolExecutor(max_workers=encoder_threads, thread_name_prefix="boltgate-encode")
        self._collector: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def retry_after(self) -> float:
        """Seconds until the queue has likely drained enough to take a request (at least 1)."""
        batches_ahead = math.ceil(self.queue_depth / self.max_batch_size)
        return max(1.0, batches_ahead * self.stats.mean_batch_seconds())

    async def submit(self, request: ImageRequest, deadline: Deadline | None = None) -> BatchOutcome:
        """The request's images; dropped unrun (``VendorTimeout``) if ``deadline`` passes before its turn."""
        if self._closed:
            raise VendorUnavailable("the local pipeline is shutting down", status=503)
        if len(self._waiting) >= self.max_queue:
            if self.observer is not None:
                self.observer.queue_rejected()
            raise QueueFull(f"local queue full ({self.max_queue} waiting)", retry_after=self.retry_after())
        if self._collector is None:
            self._collector = asyncio.create_task(self._collect_forever(), name="boltgate-batcher")
        loop = asyncio.get_running_loop()
        entry = _Waiting(request, BatchKey.of(request), loop.create_future(), loop.time(), deadline)
        self._waiting.append(entry)
        self._depth_changed()
        self._arrived.set()
        try:
            return await entry.future
        finally:
            if entry in self._waiting:  # given up (deadline, cancellation) before it ran
                self._waiting.remove(entry)
                self._depth_changed()

    async def aclose(self) -> None:
        """Stop taking work, fail what still waits, and let the threads go."""
        self._closed = True
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        while self._waiting:
            entry = self._waiting.popleft()
            if not entry.future.done():
                entry.future.set_exception(VendorUnavailable("the local pipeline stopped", status=503))
        if self._owns_gpu_thread:
            self._gpu.shutdown(wait=False, cancel_futures=True)
        self._encoders.shutdown(wait=False, cancel_futures=True)

    def _depth_changed(self) -> None:
        if self.observer is not None:
            self.observer.queue_depth_changed(len(self._waiting))

    async def _collect_forever(self) -> None:
        while True:
            batch = await self._next_batch()
            try:
                await self._run(batch)
            except Exception as exc:  # a broken pipeline contract must not stop the batcher
                log.exception("the local batcher failed a batch of %d", len(batch))
                _fail(batch, PipelineFailed(f"local pipeline failed: {type(exc).__name__}: {exc}"))

    async def _next_batch(self) -> list[_Waiting]:
        while True:
            while not self._live():
                self._arrived.clear()
                await self._arrived.wait()
            first = self._live()[0]
            if first.key.is_edit or await self._wait_for_company(first):
                batch = self._take(first)
                self._depth_changed()
                return batch

    async def _wait_for_company(self, first: _Waiting) -> bool:
        """Wait until ``first``'s window closes or a full batch waits; False if ``first`` gave up."""
        loop = asyncio.get_running_loop()
        closes_at = first.enqueued_at + self.window_s
        while True:
            self._arrived.clear()
            if first.future.done():
                return False
            compatible = sum(entry.request.n for entry in self._live() if entry.key == first.key)
            remaining = closes_at - loop.time()
            if compatible >= self.max_batch_size or remaining <= 0:
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _live(self) -> list[_Waiting]:
        """Waiting requests whose caller still waits for them."""
        return [entry for entry in self._waiting if not entry.future.done()]

    def _take(self, first: _Waiting) -> list[_Waiting]:
        """The first waiting request plus, in arrival order, compatible ones that still fit."""
        batch, images = [first], first.request.n
        if not first.key.is_edit:
            for entry in self._live():
                if entry is not first and entry.key == first.key and images + entry.request.n <= self.max_batch_size:
                    batch.append(entry)
                    images += entry.request.n
        for entry in batch:
            self._waiting.remove(entry)
        return batch

    async def _run(self, batch: list[_Waiting]) -> None:
        """Run ``batch``; when the call fails, run each half on its own, so only the guilty request fails.

        A batch of four with one request that exhausts GPU memory costs at most three extra calls
        (4 -> 2 + 2 -> 1 + 1) and fails that request alone. A lone request that fails is a
        pipeline failure (``PipelineFailed``, counted by ``health``) unless its error is its own
        (a ``BoltgateError``: an unreadable init image, a step count not loaded).
        """
        batch = self._still_wanted(batch)
        if not batch:
            return
        loop = asyncio.get_running_loop()
        requests = [entry.request for entry in batch]
        try:
            images, seconds = await loop.run_in_executor(self._gpu, _timed_run, self.pipeline, requests)
        except asyncio.CancelledError:  # closing: nobody will deliver this batch any more
            _fail(batch, VendorUnavailable("the local pipeline stopped", status=503))
            raise
        except Exception as exc:
            await self._after_failure(batch, exc)
            return
        self.health.succeeded()
        total = sum(entry.request.n for entry in batch)
        record = BatchRecord(requests=len(batch), images=total, seconds=seconds)
        self.stats.add(record)
        if self.observer is not None:
            self.observer.batch_finished(record, self.stats.images_per_second())
        for entry, own in zip(batch, images, strict=True):
            share = seconds * entry.request.n / total
            task = asyncio.create_task(self._deliver(entry, own, share, total))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    def _still_wanted(self, batch: list[_Waiting]) -> list[_Waiting]:
        """``batch`` without the requests nobody waits for any more: their callers left (the worker
        cancels a request whose client disconnected) or their deadline passed. They never reach the GPU."""
        wanted = []
        for entry in batch:
            if entry.future.done():
                reason = "cancelled"
            elif entry.deadline is not None and entry.deadline.expired():
                reason = "expired"
                entry.future.set_exception(VendorTimeout("the request's deadline passed before its batch ran"))
            else:
                wanted.append(entry)
                continue
            if self.observer is not None:
                self.observer.request_dropped(reason)
        return wanted

    async def _after_failure(self, batch: list[_Waiting], error: Exception) -> None:
        if len(batch) > 1:
            log.warning("a batch of %d requests failed (%s: %s); retrying it in halves",
                        len(batch), type(error).__name__, error)
            middle = len(batch) // 2
            for half in (batch[:middle], batch[middle:]):
                await self._run(half)
            return
        if isinstance(error, BoltgateError):  # the request's own fault
            _fail(batch, error)
            return
        log.error("the local pipeline failed a request: %s: %s", type(error).__name__, error, exc_info=error)
        self.health.failed()
        if self.observer is not None:
            self.observer.pipeline_failed()
        _fail(batch, PipelineFailed(f"local pipeline failed: {type(error).__name__}: {error}"))

    async def _deliver(self, entry: _Waiting, images: Sequence[AnyImage], gpu_seconds: float,
                       batch_size: int) -> None:
        loop = asyncio.get_running_loop()
        fmt = entry.request.output_format
        try:
            encoded = await asyncio.gather(
                *(loop.run_in_executor(self._encoders, encode_image, image, fmt) for image in images))
        except Exception as exc:
            log.exception("encoding the local pipeline's images failed")
            if not entry.future.done():
                entry.future.set_exception(PipelineFailed(f"encoding failed: {type(exc).__name__}: {exc}"))
            return
        if not entry.future.done():
            entry.future.set_result(BatchOutcome(list(encoded), gpu_seconds, batch_size))


def _fail(batch: list[_Waiting], error: BaseException) -> None:
    for entry in batch:
        if not entry.future.done():
            entry.future.set_exception(error)


def _timed_run(pipeline: BatchPipeline, requests: list[ImageRequest]) -> tuple[Sequence[Sequence[AnyImage]], float]:
    """Runs on the GPU thread: the pipeline's images and the seconds the call took there."""
    started = time.perf_counter()
    images = pipeline.run(requests)
    return images, time.perf_counter() - started
