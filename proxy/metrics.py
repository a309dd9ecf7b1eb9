"""Every Prometheus metric the gateway exports, in one place (the dashboards query these names).

Several worker processes (``boltgate serve --workers N``) write their values to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode) and ``/metrics`` sums them
(``proxy.metrics_exposition``). Every gauge therefore says how workers combine: a sum for what
each worker counts (requests in flight), the most recent value for a state every worker sees
(a breaker, the state store).

Gateway overhead is measured apart from vendor time: ``boltgate_backend_attempt_seconds`` is the
time spent waiting on a backend, ``boltgate_gateway_overhead_seconds`` is the request's total
time minus that.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.metrics import MetricWrapperBase

disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
"""No ``x_created`` twin for every counter and histogram series (a quarter of all series, unused)."""

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, start time
PlatformCollector(registry=REGISTRY)  # python_info


def _boltgate_version() -> str:
    try:
        return version("boltgate")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


BUILD = Info("boltgate_build", "The running gateway's version and Python.", registry=REGISTRY)
BUILD.info({"version": _boltgate_version(), "python": platform.python_version()})

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0)
_OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

REQUESTS = Counter(
    "boltgate_requests_total", "Image requests answered, by endpoint and HTTP status.",
    ["endpoint", "status"], registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "boltgate_request_seconds", "Wall time of an image request, end to end.",
    ["endpoint"], buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
GATEWAY_OVERHEAD_SECONDS = Histogram(
    "boltgate_gateway_overhead_seconds",
    "Time the gateway itself added to a request (total minus time waiting on backends).",
    buckets=_OVERHEAD_BUCKETS, registry=REGISTRY,
)
BACKEND_ATTEMPTS = Counter(
    "boltgate_backend_attempts_total", "Attempts on a route, by outcome (ok, timeout, rate_limited...).",
    ["backend", "region", "outcome"], registry=REGISTRY,
)
BACKEND_ATTEMPT_SECONDS = Histogram(
    "boltgate_backend_attempt_seconds", "Time spent on one attempt of one route.",
    ["backend", "region"], buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
FAILOVERS = Counter(
    "boltgate_failovers_total", "Times a request left a route for the next one.",
    ["from_backend", "reason"], registry=REGISTRY,
)
CIRCUIT_OPEN = Gauge(
    "boltgate_circuit_open",
    "1 while a route's circuit breaker is open or the route is quarantined; read from the shared state "
    "store at scrape time, so every replica (and every worker) exports the same value.",
    ["backend", "region"], registry=REGISTRY, multiprocess_mode="livemostrecent",
)
ROUTE_STATE = Gauge(
    "boltgate_route_state",
    "1 for a route's current breaker state (closed, open, half_open, quarantined), read at scrape time.",
    ["backend", "region", "state"], registry=REGISTRY, multiprocess_mode="livemostrecent",
)
PROBES = Counter(
    "boltgate_probes_total", "Health probes this replica ran, by outcome (ok, failed, key_refused).",
    ["backend", "region", "outcome"], registry=REGISTRY,
)
HEDGES_STARTED = Counter(
    "boltgate_hedges_started_total", "Hedges started: a second route raced a slow first one, by hedge backend.",
    ["backend"], registry=REGISTRY,
)
HEDGES_WON = Counter(
    "boltgate_hedges_won_total", "Hedges whose route answered first, by backend.", ["backend"], registry=REGISTRY,
)
HEDGE_COST_USD = Counter(
    "boltgate_hedge_cost_usd_total",
    "Estimated USD of attempts cancelled because another route answered first (booked as losses).",
    ["backend"], registry=REGISTRY,
)
IMAGES = Counter(
    "boltgate_images_total", "Images delivered to clients, by backend.",
    ["backend"], registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "boltgate_requests_in_flight", "Image requests being served right now.", registry=REGISTRY,
    multiprocess_mode="livesum",
)
CHARGED_USD = Counter(
    "boltgate_charged_usd_total", "USD charged to clients, by backend.", ["backend"], registry=REGISTRY,
)
UPSTREAM_COST_USD = Counter(
    "boltgate_upstream_cost_usd_total", "USD owed to vendors, by backend.", ["backend"], registry=REGISTRY,
)
GATEWAY_LOSS_USD = Counter(
    "boltgate_gateway_loss_usd_total",
    "USD a vendor billed for work that delivered nothing (never passed on to clients).",
    ["backend"], registry=REGISTRY,
)
UNCONFIRMED_CHARGES = Counter(
    "boltgate_unconfirmed_charges_total",
    "Charges the state store never confirmed, by outcome. A request's (answered 503), once made sure it is "
    "not charged: refunded (the charge had landed and was taken back) or released (it had not). An async "
    "job run's, as it goes unconfirmed: left_to_job (the job's end takes it back unless the job ends with its "
    "images).",
    ["outcome"], registry=REGISTRY,
)
UNCONFIRMED_CHARGES_PENDING = Gauge(
    "boltgate_unconfirmed_charges_pending",
    "Unconfirmed charges of requests answered 503, waiting for the state store to answer to be voided.",
    registry=REGISTRY, multiprocess_mode="livesum",
)
GATEWAY_LOSSES_PENDING = Gauge(
    "boltgate_gateway_losses_pending",
    "Gateway losses (vendor cost no client pays) the state store did not book, waiting for it to answer to be "
    "booked (then counted in boltgate_gateway_loss_usd_total).",
    registry=REGISTRY, multiprocess_mode="livesum",
)

STATE_EVICTIONS = Counter(
    "boltgate_state_evictions_total",
    "Values the in-memory state dropped to stay within its byte budget (least recently used first), by kind.",
    ["kind"], registry=REGISTRY,
)
BILLING_OVERRUN_USD = Counter(
    "boltgate_billing_overrun_usd_total",
    "USD a time-billed vendor charged for run time above what the client can be billed (a gateway loss).",
    ["backend"], registry=REGISTRY,
)
VENDOR_COST_MISMATCH = Counter(
    "boltgate_vendor_cost_mismatch_total",
    "Charges whose vendor-reported cost differs from the catalog's by more than 1% (check the catalog).",
    ["backend"], registry=REGISTRY,
)
STATE_DEGRADED = Gauge(
    "boltgate_state_degraded",
    "1 while the state store (Redis, the ledger file) does not answer: requests that need the ledger get 503.",
    registry=REGISTRY, multiprocess_mode="livemostrecent",
)
JOBS_FINISHED = Counter(
    "boltgate_jobs_total", "Async image jobs finished, by status (succeeded, failed, cancelled).",
    ["status"], registry=REGISTRY,
)
JOBS_RUNNING = Gauge(
    "boltgate_jobs_running", "Async image jobs running right now (summed over workers).", registry=REGISTRY,
    multiprocess_mode="livesum",
)
JOBS_RECLAIMED = Counter(
    "boltgate_jobs_reclaimed_total",
    "Async jobs taken over from a runner that stopped mid-run, by what happened (retried, failed).",
    ["outcome"], registry=REGISTRY,
)
JOBS_HOLD_RENEWALS = Counter(
    "boltgate_jobs_hold_renewals_total",
    "Renewals of a job's credit hold for jobs.queued_hold_s once the job is queued, by outcome (renewed; refused: "
    "the hold was closed already, or its lease ran out and the budget no longer covers it; failed: the state store "
    "did not answer). A job not renewed stays queued on a request's lease, and its run holds again.",
    ["outcome"], registry=REGISTRY,
)
JOBS_CHARGED_WITHOUT_IMAGES = Counter(
    "boltgate_jobs_charged_without_images_total",
    "Async jobs that ended without their images while a charge for them stands that they kept no record of, "
    "so cannot take back (a record from before runs kept their charge; each is counted once and logged with "
    "key, request id and amount, to refund by hand).",
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "boltgate_webhook_attempts_total",
    "Webhook POSTs, by outcome (delivered, failed: retried later, refused: the outbound policy refused the address).",
    ["outcome"], registry=REGISTRY,
)
WEBHOOK_GIVEN_UP = Counter(
    "boltgate_webhook_given_up_total", "Webhooks abandoned after their last attempt failed.", registry=REGISTRY,
)


@lru_cache(maxsize=4096)
def labelled(metric: MetricWrapperBase, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: the lookup costs more than the increment, and the
    label sets (vendor x region x outcome) are few."""
    return metric.labels(*values)
