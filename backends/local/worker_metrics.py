"""Every Prometheus metric the GPU worker exports, in its own registry (not the gateway's).

An autoscaler reads ``boltgate_worker_queue_depth``; capacity planning reads images per second
and GPU-seconds; ``boltgate_worker_batch_size`` shows whether dynamic batching actually merges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from backends.local.batching import BatchRecord

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0)
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class WorkerMetrics:
    """The worker's metrics; also the batcher's observer. One instance per app, one registry each."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.queue_depth = Gauge(
            "boltgate_worker_queue_depth", "Requests waiting for the pipeline.", registry=self.registry)
        self.batch_size = Histogram(
            "boltgate_worker_batch_size", "Images per pipeline call.", buckets=_BATCH_BUCKETS,
            registry=self.registry)
        self.images = Counter(
            "boltgate_worker_images", "Images generated.", registry=self.registry)
        self.gpu_seconds = Counter(
            "boltgate_worker_gpu_seconds", "Seconds the pipeline ran.", registry=self.registry)
        self.gpu_memory = Gauge(
            "boltgate_worker_gpu_memory_bytes", "GPU memory held by tensors (0 on the CPU).",
            registry=self.registry)
        self.images_per_second = Gauge(
            "boltgate_worker_images_per_second", "Images per pipeline-second over recent batches.",
            registry=self.registry)

        self.queue_rejections = Counter(
            "boltgate_worker_queue_rejections", "Requests turned away because the queue was full.",
            registry=self.registry)
        self.pipeline_failures = Counter(
            "boltgate_worker_pipeline_failures", "Requests the pipeline failed alone (after splitting their batch).",
            registry=self.registry)
        self.dropped = Counter(
            "boltgate_worker_dropped", "Requests dropped before their batch ran, by reason: cancelled "
            "(the client left) or expired (the deadline passed).", ["reason"], registry=self.registry)
        self.requests = Counter(
            "boltgate_worker_requests", "Generate requests answered, by HTTP status.", ["status"],
            registry=self.registry)
        self.ready = Gauge(
            "boltgate_worker_ready", "1 once the model is loaded and warmed up, else 0 (loading or failed).",
            registry=self.registry)

        self.request_seconds = Histogram(
            "boltgate_worker_request_seconds", "Time from a generate request's arrival to its answer.",
            buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue_wait_seconds = Histogram(
            "boltgate_worker_queue_wait_seconds",
            "Time a request waited before its batch ran (its latency minus the batch's pipeline time).",
            buckets=_LATENCY_BUCKETS, registry=self.registry)

    def track_eager_fallbacks(self, read: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """Export the pipeline's eager-fallback counts (kept by the pipeline, read at every scrape)."""
        self.registry.register(_EagerFallbackCollector(read))

    def request_served(self, seconds: float, pipeline_seconds: float) -> None:
        self.request_seconds.observe(seconds)
        self.queue_wait_seconds.observe(max(0.0, seconds - pipeline_seconds))

    def track_readiness(self, is_ready: Callable[[], bool]) -> None:
        """Read readiness at every scrape, so the gauge can never be stale."""
        self.ready.set_function(lambda: 1.0 if is_ready() else 0.0)

    def queue_rejected(self) -> None:
        self.queue_rejections.inc()

    def pipeline_failed(self) -> None:
        self.pipeline_failures.inc()

    def request_dropped(self, reason: str) -> None:
        self.dropped.labels(reason).inc()

    def request_answered(self, status: int) -> None:
        self.requests.labels(str(status)).inc()

    def track_gpu_memory(self, read: Callable[[], float]) -> None:
        """Read GPU memory at every scrape (the pipeline loads after the metrics exist)."""
        self.gpu_memory.set_function(read)

    def queue_depth_changed(self, depth: int) -> None:
        self.queue_depth.set(depth)

    def batch_finished(self, record: BatchRecord, images_per_second: float) -> None:
        self.batch_size.observe(record.images)
        self.images.inc(record.images)
        self.gpu_seconds.inc(record.seconds)
        self.images_per_second.set(images_per_second)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EagerFallbackCollector(Collector):
    """``boltgate_worker_eager_fallbacks_total{module, reason}`` from the pipeline's own counts."""

    def __init__(self, read: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._read = read

    def describe(self) -> list[CounterMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        for (module, reason), count in sorted(self._read().items()):
            family.add_metric([module, reason], count)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "boltgate_worker_eager_fallbacks",
            "Calls of a compiled module (a UNet step, a VAE decode) that ran eagerly, by reason: "
            "shape_not_warmed, recompile_refused, compile_failed.",
            labels=["module", "reason"])
