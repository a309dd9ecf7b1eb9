"""The documented shapes of boltgate's answers, as pydantic models.

Handlers on the hot path build their bodies as plain dicts (for speed); these models are what the
OpenAPI document says they are. Nothing keeps the two together but the tests: the schemathesis
run (``tests/e2e/test_schemathesis.py``) validates every answer it provokes against them, and the
image answers are also validated against the ``openai`` SDK's and LiteLLM's own models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from pricing.config import RoutingPolicyName
from proxy.jobs.record import JOB_ID

USD = Field(pattern=r"^[0-9]+\.[0-9]{6}$", description="USD, six decimals")
CREDITS = Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="credits, as a decimal string")


class Documented(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Documented):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, server_error, ...")
    param: str | None = Field(description="The field or header at fault, when one is")
    code: str | None


class ErrorBody(Documented):
    """OpenAI's error envelope, used by every error answer."""

    model_config = ConfigDict(title="Error")

    error: ErrorDetail


class ImageData(Documented):
    url: str | None = Field(default=None, description="With response_format=url: where to download it")
    b64_json: str | None = Field(default=None, description="With response_format=b64_json: the image itself")
    revised_prompt: str


class Billing(Documented):
    """What the request cost (the same figures as the x-boltgate-* cost headers)."""

    images: int = Field(ge=0)
    cost_usd: str = USD
    upstream_cost_usd: Annotated[str, USD] | SkipJsonSchema[None] = Field(
        default=None, description="What the vendor cost; only where expose_upstream_cost is on")
    credits: str = CREDITS
    cost_display: str | None = Field(default=None, description="The price in the display currency, if set")


class ImagesResponseBody(Documented):
    """OpenAI's ``ImagesResponse``, plus the seed used and the ``billing`` object. There is no
    ``usage``: OpenAI's clients read it as token counts, which these models are not billed by."""

    model_config = ConfigDict(title="ImagesResponse")

    created: int
    data: list[ImageData]
    output_format: Literal["png", "jpeg", "webp"]
    size: str
    seed: Annotated[int, Field(ge=0)] | SkipJsonSchema[None] = Field(
        default=None, description="The seed used; absent when the backend that served takes none")
    billing: Billing


class ModelCard(Documented):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    root: str


class ModelList(Documented):
    object: Literal["list"]
    data: list[ModelCard]


class Health(Documented):
    status: Literal["ok"]


RouteState = Literal["closed", "open", "half_open", "quarantined"]
"""A route's breaker state (``proxy.routing.health.CircuitState``)."""
ModelLoad = Literal["loading", "ready", "failed"]
"""Where a model loaded in process stands (``backends.base.LoadState``)."""


class RouteReadiness(BaseModel):
    """Open to more fields, as readiness is."""

    route: str = Field(description="VENDOR:REGION")
    state: RouteState
    reason: str
    model: ModelLoad | SkipJsonSchema[None] = Field(default=None, description="Only for a model loaded in process")


class Readiness(BaseModel):
    """Open to more fields: readiness reports what the operator needs and grows with it."""

    status: Literal["ready", "not ready"]
    problems: list[str]
    routes: list[RouteReadiness]


class KeyUsage(BaseModel):
    """Open to more fields: the ledger's report (spend by day and vendor, budget left)."""

    object: Literal["usage"]
    key_id: str
    name: str


class KeyLimitsShown(Documented):
    """``pricing.config.KeyLimits``: null where that count has no limit."""

    requests_per_minute: int | None
    images_per_minute: int | None
    concurrent_requests: int | None


class KeyRoutingShown(Documented):
    """``pricing.config.KeyRouting``."""

    policies: list[RoutingPolicyName] | None = Field(
        description="The routing policies its requests may ask for; null: any")
    pin_routes: bool
    hedging: bool
    hedge_budget_usd_per_day: str | None = Field(description="USD, as a decimal string; null: the gateway's")


class AdminKey(Documented):
    id: str
    name: str
    budget_credits: str | None
    created: str
    revoked: bool
    static: bool
    limits: KeyLimitsShown | None = Field(description="Its own rate limits; null: the gateway's rate_limits")
    routing: KeyRoutingShown | None = Field(description="What its requests may ask of the router; null: anything")


class AdminKeyCreated(AdminKey):
    key: str = Field(description="The key itself: shown once, only here")
    webhook_secret: str = Field(description="Signs this key's job webhooks (Boltgate-Signature); also at "
                                            "GET /v1/webhooks/secret for the key's holder")


class AdminKeyList(Documented):
    object: Literal["list"]
    data: list[AdminKey]


class KeyRevoked(Documented):
    id: str
    revoked: Literal[True]


class Charge(Documented):
    """One entry of the charge log (``pricing.charge_log.ChargeRecord``). A charge taken back (its
    request was answered 503 after the state store never confirmed it) adds a refund line: the
    same ``request_id``, ``images`` and ``client_usd`` negated, ``catalog_cost_usd`` 0."""

    key_id: str
    request_id: str
    vendor: str
    region: str
    vendor_request_id: str | None = Field(description="The vendor's own id, to find the line on its invoice")
    images: int = Field(description="Images charged for; negative on a refund line")
    run_seconds: str | None = Field(description="The run time the vendor reported (time-billed vendors)")
    catalog_cost_usd: str = Field(description="The vendor's cost by the price catalog, in USD")
    vendor_reported_cost_usd: str | None = Field(description="The cost the vendor reported, when it does")
    client_usd: str = Field(description="What the client was charged, in USD; negative on a refund line")
    at: str = Field(description="When the charge was written (ISO 8601, UTC)")


class ChargeList(Documented):
    """One page of the charge log (``proxy.api.charges``)."""

    object: Literal["list"]
    data: list[Charge]
    has_more: bool = Field(description="More charges follow this page: ask again with after=next_after")
    next_after: str | None = Field(
        description="Pass as 'after' for the charges logged after this page's last (given even when has_more is "
                    "false, to come back later for newer ones); null on an empty first page")


class ProbeShown(Documented):
    ok: bool
    detail: str
    at: float = Field(description="When it ran (epoch seconds)")
    seconds: float = Field(ge=0, description="How long it took")


class Backend(Documented):
    """One route as the router sees it now (``proxy.api.backends``)."""

    route: str = Field(description="VENDOR:REGION")
    vendor: str
    region: str
    priority: int
    state: RouteState
    reason: str = Field(description="Why it is not closed; empty when it is")
    since: float | None = Field(description="When the state began (epoch seconds); null: never out")
    back_in_s: float | None = Field(description="Seconds until it is tried again; null: no wait")
    window_s: float = Field(description="The span the attempts, error rate and latencies cover")
    attempts: int = Field(ge=0)
    error_rate: float | None = Field(ge=0, le=1, description="null: no attempt in the window")
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_estimate_s: float | None = Field(description="The decayed estimate the fastest policy orders by")
    price_usd_1024x1024_4_steps: str = USD
    upstream_usd_1024x1024_4_steps: Annotated[str, USD] | SkipJsonSchema[None] = Field(
        default=None, description="What the vendor charges for it; for the admin token, or where "
                                  "expose_upstream_cost is on")
    last_probe: ProbeShown | None
    model: ModelLoad | SkipJsonSchema[None] = Field(default=None, description="Only for a model loaded in process")


class BackendList(Documented):
    object: Literal["list"]
    data: list[Backend]


JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobServed(Documented):
    """How a job's images were served (the synchronous answer's ``x-boltgate-*`` headers)."""

    vendor: str | None = Field(description="The vendor (or GPU worker) that made the images")
    region: str | None
    attempts: int = Field(ge=0, description="Attempts made across routes")


class WebhookDelivery(Documented):
    """What became of the job's webhook (``proxy.jobs.webhook.WebhookOutcome``)."""

    delivered: bool
    attempts: int = Field(ge=0, description="POSTs made")
    status: int | None = Field(description="The last HTTP status the receiver answered, if any")
    error: str | None = Field(description="Why the last attempt failed, if it did")


class ImageJob(Documented):
    """An async image job (``POST /v1/images/jobs``). The images, their cost and how they were
    served come once it succeeded; ``error`` once it failed."""

    model_config = ConfigDict(title="ImageJob")

    id: str = Field(pattern=JOB_ID.pattern, description="job_ and 128 random bits: unguessable")
    object: Literal["image.job"]
    status: JobStatus
    created_at: int = Field(description="Unix seconds")
    started_at: int | None = Field(description="When its (last) run started; null: not yet")
    finished_at: int | None = Field(description="When it succeeded, failed or was cancelled")
    runs: int = Field(ge=0, description="Runs started; 2: the first was lost mid-run and retried")
    webhook_url: str | None
    data: list[ImageData] | SkipJsonSchema[None] = Field(default=None, description="The images (as URLs)")
    output_format: Literal["png", "jpeg", "webp"] | SkipJsonSchema[None] = None
    size: str | SkipJsonSchema[None] = None
    seed: Annotated[int, Field(ge=0)] | SkipJsonSchema[None] = Field(
        default=None, description="The seed used; absent when the backend that served takes none")
    billing: Billing | SkipJsonSchema[None] = Field(default=None, description="What it cost (once succeeded)")
    served: JobServed | SkipJsonSchema[None] = None
    error: ErrorDetail | SkipJsonSchema[None] = Field(default=None, description="Why it failed (once failed)")
    webhook: WebhookDelivery | SkipJsonSchema[None] = Field(
        default=None, description="Once its webhook was delivered or given up")


class CancelledImageJob(ImageJob):
    """The job, cancelled: its credits are released and nothing is charged for it."""

    model_config = ConfigDict(title="CancelledImageJob")

    status: Literal["cancelled"]


class WebhookSecret(Documented):
    object: Literal["webhook_secret"]
    secret: str = Field(pattern=r"^whsec_[A-Za-z0-9_-]{43}$",
                        description="HMAC-SHA256 key of the Boltgate-Signature on this key's job webhooks")
    signature_header: Literal["Boltgate-Signature"]
