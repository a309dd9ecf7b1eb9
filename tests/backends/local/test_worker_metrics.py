"""The worker's metrics: one registry per worker, fed by the batcher's observations."""

from __future__ import annotations

from backends.local.batching import BatchRecord
from backends.local.worker_metrics import WorkerMetrics


def _value(metrics: WorkerMetrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def test_batches_feed_the_counters_and_the_histogram() -> None:
    metrics = WorkerMetrics()
    metrics.batch_finished(BatchRecord(requests=2, images=3, seconds=0.5), images_per_second=6.0)
    metrics.batch_finished(BatchRecord(requests=1, images=1, seconds=0.25), images_per_second=5.3)
    assert _value(metrics, "boltgate_worker_images_total") == 4
    assert _value(metrics, "boltgate_worker_gpu_seconds_total") == 0.75
    assert _value(metrics, "boltgate_worker_batch_size_count") == 2
    assert _value(metrics, "boltgate_worker_batch_size_bucket", {"le": "1.0"}) == 1
    assert _value(metrics, "boltgate_worker_batch_size_bucket", {"le": "3.0"}) == 2
    assert _value(metrics, "boltgate_worker_images_per_second") == 5.3


def test_queue_depth_and_gpu_memory_are_read_live() -> None:
    metrics = WorkerMetrics()
    held = [0.0]
    metrics.track_gpu_memory(lambda: held[0])
    metrics.queue_depth_changed(7)
    held[0] = 2.5e9
    assert _value(metrics, "boltgate_worker_queue_depth") == 7
    assert _value(metrics, "boltgate_worker_gpu_memory_bytes") == 2.5e9


def test_each_worker_has_its_own_registry() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.batch_finished(BatchRecord(requests=1, images=2, seconds=0.1), images_per_second=20.0)
    assert _value(second, "boltgate_worker_images_total") == 0
    assert b"boltgate_worker_images_total 2.0" in first.render()


def test_readiness_is_read_at_scrape_time_so_it_is_never_stale() -> None:
    metrics = WorkerMetrics()
    state = {"ready": False}
    metrics.track_readiness(lambda: state["ready"])
    assert _value(metrics, "boltgate_worker_ready") == 0
    state["ready"] = True
    assert _value(metrics, "boltgate_worker_ready") == 1


def test_answers_are_counted_by_status() -> None:
    metrics = WorkerMetrics()
    metrics.request_answered(200)
    metrics.request_answered(200)
    metrics.request_answered(503)
    assert _value(metrics, "boltgate_worker_requests_total", {"status": "200"}) == 2
    assert _value(metrics, "boltgate_worker_requests_total", {"status": "503"}) == 1


def test_latency_and_queue_wait_are_observed_per_request() -> None:
    metrics = WorkerMetrics()
    metrics.request_served(seconds=1.5, pipeline_seconds=0.5)
    assert _value(metrics, "boltgate_worker_request_seconds_sum") == 1.5
    assert _value(metrics, "boltgate_worker_queue_wait_seconds_sum") == 1.0
    assert _value(metrics, "boltgate_worker_queue_wait_seconds_bucket", {"le": "1.0"}) == 1


def test_the_worker_exports_its_process_metrics_and_no_created_twins() -> None:
    text = WorkerMetrics().render().decode()
    assert "process_resident_memory_bytes" in text
    assert "_created" not in text


def test_eager_fallbacks_are_read_from_the_pipeline_at_scrape_time() -> None:
    metrics = WorkerMetrics()
    counts = {("unet", "shape_not_warmed"): 3}
    metrics.track_eager_fallbacks(lambda: counts)
    labels = {"module": "unet", "reason": "shape_not_warmed"}
    assert _value(metrics, "boltgate_worker_eager_fallbacks_total", labels) == 3
    counts[("unet", "shape_not_warmed")] = 5
    assert _value(metrics, "boltgate_worker_eager_fallbacks_total", labels) == 5
    assert "# TYPE boltgate_worker_eager_fallbacks_total counter" in metrics.render().decode()
