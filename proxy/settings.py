"""The gateway's one settings tree: environment (prefix ``BOLTGATE_``) over an optional TOML file.

The TOML file (``BOLTGATE_CONFIG=path``) describes the routes: vendors, their regions (base
URLs), the *name* of the environment variable holding each vendor's key, priority, weight and
timeouts. Secrets never sit in the file: a route is enabled when its key variable is set (the
GPU worker and the in-process pipeline need no key). Every setting has a default that serves a
single machine.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from backends.route_options import unknown_options
from backends.vendors.registry import VENDOR_SPECS
from core.image_header import DECODER_MAX_PIXELS, DEFAULT_MAX_PIXELS
from core.state.ledger_store import CLOSED_TTL_S
from pricing.config import KeyLimits, KeyPolicy, PricingConfig, RoutingPolicyName
from proxy.key_positions import validated_by_position
from proxy.settings_secrets import ENV_PREFIX, refuse_secrets

LOCAL = "local"
"""The in-process pipeline: a backend with no vendor spec (no HTTP, no key)."""


class RegionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    base_url: str = Field(pattern=r"^https?://")


class RouteConfig(BaseModel):
    """One vendor account: its regions share a key, a priority and a weight."""

    model_config = ConfigDict(extra="forbid")

    vendor: str
    """A vendor of the registry (``backends.vendors.registry``), or ``local``."""
    key_env: str | None = None
    """Environment variable holding the key; defaults to the vendor's own (``<VENDOR>_API_KEY``)."""
    regions: list[RegionConfig] = Field(default_factory=list)
    priority: int = Field(default=100, ge=0)
    """Lower is tried first."""
    weight: float = Field(default=1.0, gt=0)
    """Share of traffic among routes of the same priority."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Longest one attempt may take (the request's deadline may cut it shorter)."""
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts on one region before failing over to the next route."""
    max_billable_s_per_image: float | None = Field(default=None, gt=0)
    """For vendors billed by run time (Eachlabs, GPU workers): the most run time per image the
    client can be billed. Reservations hold this worst case, so a budget is never overspent
    whatever the vendor reports; run time above it is the gateway's loss. Default: the route's
    ``timeout_s`` for the whole request (the longest an attempt can run)."""
    options: dict[str, str] = Field(default_factory=dict)
    """Vendor-specific knobs (Runflow's model path, Eachlabs' image field, ``auth_scheme``...)."""
    poll_interval_s: float | None = Field(default=None, gt=0)
    """Job vendors: seconds between polls; None keeps the pace the vendor documents."""
    enabled: bool = True
    trusted_hosts: list[str] = Field(default_factory=list)
    """Hosts (``host`` or ``host:port``) this route's output URLs may be fetched from over plain
    http or at private addresses. The route's own base URLs always are; every other output URL
    must be https on a public address (see ``OutboundConfig``)."""

    @field_validator("vendor")
    @classmethod
    def _known_vendor(cls, vendor: str) -> str:
        if vendor != LOCAL and vendor not in VENDOR_SPECS:
            known = ", ".join(sorted([*VENDOR_SPECS, LOCAL]))
            raise ValueError(f"unknown vendor {vendor!r}; known: {known}")
        return vendor

    @model_validator(mode="after")
    def _known_options(self) -> RouteConfig:
        problem = unknown_options(self.vendor, self.options)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _default_region(self) -> RouteConfig:
        spec = VENDOR_SPECS.get(self.vendor)
        if not self.regions and spec is not None and spec.facts.default_base_url:
            self.regions = [RegionConfig(name="default", base_url=spec.facts.default_base_url)]
        if self.vendor == LOCAL and not self.regions:
            self.regions = [RegionConfig(name="in-process", base_url="http://in-process")]
        if not self.regions:
            raise ValueError(f"route '{self.vendor}' needs at least one region with a base_url")
        return self

    @property
    def key_variable(self) -> str:
        spec = VENDOR_SPECS.get(self.vendor)
        return self.key_env or (spec.facts.key_env if spec else f"{self.vendor.upper()}_API_KEY")

    def api_key(self) -> str | None:
        return os.environ.get(self.key_variable) or None

    @property
    def needs_key(self) -> bool:
        spec = VENDOR_SPECS.get(self.vendor)
        return spec is not None and spec.facts.key_required

    @property
    def is_enabled(self) -> bool:
        return self.enabled and (not self.needs_key or self.api_key() is not None)


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backoff_initial_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=4.0, ge=0)
    jitter_s: float = Field(default=0.25, ge=0)
    max_retry_after_s: float = Field(default=30.0, ge=0)
    """A Retry-After longer than this fails over at once instead of waiting."""
    max_wait_with_fallback_s: float = Field(default=0.5, ge=0)
    """While another route is left to try, a wait (backoff or Retry-After) longer than this
    fails over at once: a busy vendor or a full GPU queue should not hold the request."""
    unavailable_retry_after_s: float = Field(default=1.0, gt=0)
    """The Retry-After of a 503 (or an upstream 429) when no vendor and no breaker says better."""


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_threshold: int = Field(default=5, ge=1)
    """Consecutive failures that open a route's circuit."""
    open_s: float = Field(default=30.0, gt=0)
    """How long an open circuit keeps the route out before one trial request."""
    quarantine_s: float = Field(default=300.0, gt=0)
    """How long a vendor account is out after the vendor refuses our key (401/403)."""
    credit_quarantine_s: float = Field(default=30.0, gt=0)
    """How long a vendor account is out after a 402: short, since a payment refusal can clear
    on its own (Eachlabs counts in-flight predictions against the balance)."""
    half_open_trials: int = Field(default=3, ge=1)
    """Requests let through (across replicas) to a route a passing probe brought back."""
    half_open_s: float = Field(default=60.0, gt=0)
    """How long a half-open route waits for a verdict from its trial requests."""


class BalancedConfig(BaseModel):
    """How ``routing_policy = "balanced"`` weighs a route within its priority tier: each weight
    multiplies the route's latency (or price) relative to the tier's best."""

    model_config = ConfigDict(extra="forbid")

    latency_weight: float = Field(default=1.0, ge=0)
    price_weight: float = Field(default=1.0, ge=0)


class HedgingConfig(BaseModel):
    """Racing a slow route with the next one; off by default (each hedge may cost a second
    generation, booked as the gateway's loss, never the client's)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    """Hedge every request; off: only requests that ask (``x-boltgate-hedge: on``, if their key may)."""
    after_s: float | None = Field(default=None, gt=0)
    """Start the hedge after this long; None: after the first route's recent p95."""
    min_after_s: float = Field(default=0.25, gt=0)
    """The p95 threshold never goes below this (a fast route's p95 is mostly noise)."""
    fallback_after_s: float = Field(default=5.0, gt=0)
    """The threshold for a route with no recent record."""
    max_extra_usd_per_request: Decimal = Field(default=Decimal("0.05"), ge=0)
    """A hedge whose route would cost the gateway more than this (upstream) does not start."""
    key_budget_usd_per_day: Decimal | None = Field(default=None, ge=0)
    """The most hedges may cost per key per UTC day (a key's ``routing.hedge_budget_usd_per_day``
    wins); None: no cap besides the key's own credit budget."""


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval_s: float = Field(default=15.0, gt=0)
    """Each route is probed at most once per interval, across every replica sharing the state."""
    timeout_s: float = Field(default=5.0, gt=0)


class WebhookConfig(BaseModel):
    """How job webhooks are delivered: POSTed with a signature, retried with backoff."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=6, ge=1, le=20)
    """POSTs before giving up (the first included); with the defaults the last comes ~31 s after the first."""
    backoff_initial_s: float = Field(default=1.0, ge=0)
    """Wait after the first failed POST; doubled after each further one."""
    backoff_max_s: float = Field(default=60.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)
    """One POST, connect to last byte of the answer."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Hosts (``host`` or ``host:port``) a webhook may reach over plain http or at a loopback or
    private address. Every other webhook URL must be https on a public address: a client must
    not make the gateway call into its own network."""


class JobsConfig(BaseModel):
    """Async image jobs (``POST /v1/images/jobs``): run by the gateway's own processes."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(default=4, ge=1, le=1000)
    """Jobs one gateway process runs at once (more wait in the queue)."""
    queued_hold_s: float = Field(default=3600.0, gt=0)
    """How long the credits held at submit stay held while the job waits to run, from when it
    was queued (until then the hold lasts a request's lease, ``deadline_s`` plus
    ``reservation_grace_s``, so a submit cut off before queueing its job gives them back that
    soon); once it runs, the hold is renewed for the request's deadline. A job waiting longer
    is re-checked against the budget when it starts."""
    retention_s: float = Field(default=86400.0, gt=0)
    """How long a job's record (and so ``GET /v1/images/jobs/{id}``) is kept; its images live
    ``image_ttl_s``. At most the ledger's ``CLOSED_TTL_S`` (7 days): what makes a job's end count
    once (a charge taken back, a loss booked, ``charged_without_images`` reported) is a marker the
    ledger keeps that long, and a job still delivered after it could be counted again."""
    reclaim_idle_s: float = Field(default=30.0, gt=0)
    """Redis: a running job whose runner has not reported for this long is taken over by another
    runner (its process died). Runners report every third of it."""
    consumer_expiry_s: float = Field(default=600.0, gt=0)
    """Redis: a runner (consumer) idle this long that owns no pending job is removed from the
    consumer group (its process is gone). Must be well above the runners' read wait (1 s)."""
    stop_grace_s: float = Field(default=10.0, ge=0)
    """On shutdown (SIGTERM), how long running jobs may take to finish; those still running are
    then cancelled and end ``failed`` (``gateway_stopped``), their credits released."""
    webhook_root_secret: SecretStr | None = None
    """The root every key's webhook secret is derived from; random and kept in the state store
    when unset."""
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)

    @field_validator("retention_s")
    @classmethod
    def _within_the_ledgers_memory(cls, retention_s: float) -> float:
        if retention_s > CLOSED_TTL_S:
            raise ValueError(
                f"jobs.retention_s={retention_s:g} is above {CLOSED_TTL_S:g} s (7 days), how long the ledger "
                "remembers that a job's charge was taken back or reported (CLOSED_TTL_S): a job kept longer "
                "could have its end counted twice; set it to 604800 or less")
        return retention_s


class OutboundConfig(BaseModel):
    """What a vendor may make the gateway read: its answers and the image URLs it returns.

    Output URLs are fetched over https from public addresses only (never loopback, private,
    link-local or metadata addresses), with no credentials in the URL, following at most
    ``max_redirects`` redirects, each checked again. Hosts listed here, in a route's
    ``trusted_hosts``, or a route's own base URL are exempt from the https and address rules.
    """

    model_config = ConfigDict(extra="forbid")

    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    """One fetched output image, counted after decompression (a 1536x1536 PNG is under 7 MB)."""
    max_answer_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """One vendor API answer (JSON carrying up to four base64 images)."""
    max_redirects: int = Field(default=3, ge=0, le=10)
    max_image_pixels: int = Field(default=DEFAULT_MAX_PIXELS, gt=0, le=DECODER_MAX_PIXELS)
    """Declared width x height above which a vendor's image is refused before any decode; the
    gateway's own decodes (format conversion, the blank check) hold to it too. At most what
    Pillow opens at all (``DECODER_MAX_PIXELS``), so a cap it allows is never refused by Pillow."""
    allowed_fetch_hosts: list[str] = Field(default_factory=list)
    """Hosts every route may fetch from over http or at private addresses (an internal CDN)."""


class ServerConfig(BaseModel):
    """Limits on what one client connection may hold (``boltgate serve``, uvicorn + httptools).

    A request's headers must arrive within ``header_timeout_s`` and fit in ``max_header_bytes``
    (else 408 or 431 and the connection is closed); its body must arrive within ``body_timeout_s``;
    an answer the client stops reading is dropped with its connection after ``send_timeout_s``;
    beyond ``max_connections`` open connections a new one is answered 503 and closed at once, so
    slow or half-sent requests cannot exhaust file descriptors and ``/healthz`` keeps answering.
    """

    model_config = ConfigDict(extra="forbid")

    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """Request line plus headers; 64 KiB is far above what any client sends (nginx uses 8-32 KiB)."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """From connection (or a keep-alive request's first byte) to the end of the headers."""
    body_timeout_s: float = Field(default=60.0, gt=0)
    """From the end of the headers to the end of the body (26 MB at 4 Mbit/s takes about 55 s)."""
    max_connections: int = Field(default=2048, ge=1)
    """Open client connections; capped at start to three quarters of the file descriptor limit."""
    keep_alive_s: float = Field(default=75.0, gt=0)
    """Idle time before a keep-alive connection is closed: longer than a load balancer's (60 s),
    so the balancer, not the gateway, closes idle connections."""
    send_timeout_s: float = Field(default=60.0, gt=0)
    """How long an answer may wait on a client that reads none of it: when the bytes still to be
    sent have not gone down for this long, the connection is cut (nginx's ``send_timeout``, 60 s).
    Progress, however slow, restarts it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    config: Path | None = None
    """TOML file describing the routes (and any other setting)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["human", "json"] = "human"
    """``human``: one readable line per record; ``json``: one JSON object per line (for a collector)."""
    log_prompts: bool = False
    """Write each request's prompt in its access line (off: prompts may be personal data)."""
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    """Worker processes ``boltgate serve`` starts on the port, each with its own event loop
    (``auto``: the CPUs the container may use). More than one needs shared state: ``sqlite`` (the
    workers share its file; images go to ``image_dir``) or ``redis``; ``memory`` is refused."""

    routes: list[RouteConfig] = Field(default_factory=list)
    routing_policy: RoutingPolicyName = "priority"
    """priority (then weights), cheapest, fastest (decayed latency, shared by the replicas) or
    balanced (priority tiers, then latency and price weighted by ``balanced``); a request may
    ask for another (``routing_policy`` in the body or ``x-boltgate-routing-policy``)."""
    balanced: BalancedConfig = Field(default_factory=BalancedConfig)
    hedging: HedgingConfig = Field(default_factory=HedgingConfig)
    deadline_s: float = Field(default=60.0, gt=0)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    probes: ProbeConfig = Field(default_factory=ProbeConfig)
    content_filter_action: Literal["failover", "reject"] = "failover"
    simulators: Literal["auto", "on", "off"] = "auto"
    """``auto``: serve from the built-in vendor simulators when no route is enabled."""
    http_client: Literal["lean", "aiohttp", "httpx"] = "lean"
    """The HTTP client every vendor route calls through: lean (HTTP/1.1 on asyncio's buffered
    protocol, the least CPU per request), aiohttp or httpx. All keep one contract (timeouts,
    redirects, errors, the outbound policy), so the choice changes speed, not behaviour."""

    local_model_dir: Path | None = None
    """An SDXL-Lightning directory (``base/`` + ``lightning/``): when set and no route names the
    local backend, the gateway runs the pipeline in process as the first route."""
    local_priority: int = 0

    state_backend: Literal["sqlite", "memory", "redis"] = "sqlite"
    """``sqlite``: one process; keys, revocations, spend and idempotency records in a SQLite file
    under ``data_dir`` (kept across restarts), breakers and images in memory. ``memory``:
    everything in memory, gone on restart (tests, throwaway runs). ``redis``: everything in Redis,
    shared by replicas (run it with AOF persistence, as the Helm chart does)."""
    data_dir: Path = Path("var/data")
    """Where the ``sqlite`` state backend keeps its file (``boltgate.sqlite3``)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    state_timeout_s: float = Field(default=2.0, gt=0)
    """The longest one state operation may take: past it (Redis down or frozen), the request is
    answered 503 ``state_unavailable`` with ``Retry-After``, and nothing is charged."""
    charge_log_retention_days: float = Field(default=35.0, gt=0)
    """How long the charge log (``boltgate usage export``, ``GET /v1/admin/charges``) keeps each
    charge: a monthly invoice plus a few days. In Redis it costs about 400 bytes per charge."""
    reservation_grace_s: float = Field(default=30.0, gt=0)
    """A reservation's lease is the request's deadline plus this: when a process dies or loses
    its state store mid-request, the credits it held come back once the lease ends."""
    image_store: Literal["state", "directory"] = "state"
    """``state``: images live in the state backend (Redis, or memory with ``memory``);
    ``directory``: on disk, in ``image_dir``. With ``sqlite`` images are always on disk: the
    charges, job ends and idempotency records that point at them are in its file and outlive the
    process, so the images must too (in memory a restart took away images already paid for)."""
    image_dir: Path | None = None
    """Where images on disk go; None: ``<data_dir>/images``, beside the SQLite file."""
    image_ttl_s: float = Field(default=3600.0, gt=0)
    memory_image_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    """With the in-memory state: bytes of served images kept at most; past it the least recently
    used are dropped (``boltgate_state_evictions_total``). Expired images leave on their own.
    With Redis, images leave by their TTL; size the server for ``image_ttl_s`` of traffic rather
    than letting it evict (an eviction policy could also drop ledgers and idempotency records)."""
    public_base_url: str | None = None
    """Base of the image URLs handed to clients (set it behind a load balancer). Unset: the
    request's ``Host`` when it is in ``allowed_hosts``, else the address the client connected to;
    never an arbitrary ``Host`` header (see ``proxy.images.links``)."""
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])
    """``Host`` values (``host`` or ``host:port``) image URLs may be built from when
    ``public_base_url`` is unset."""
    max_body_bytes: int = Field(default=26 * 1024 * 1024, gt=0)
    max_upload_pixels: int = Field(default=DEFAULT_MAX_PIXELS, gt=0)
    """Declared width x height above which an uploaded image is refused (400) before decoding."""
    outbound: OutboundConfig = Field(default_factory=OutboundConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    playground: bool = True
    """Serve the playground page at ``/`` (it calls the public API with the visitor's own key,
    so it grants nothing the API does not)."""

    jobs: JobsConfig = Field(default_factory=JobsConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    api_keys: dict[str, KeyPolicy] = Field(default_factory=dict)
    """Client keys and their budgets, e.g. ``BOLTGATE_API_KEYS='{"bg-dev": {"budget_credits": 500}}'``
    (from the environment: a key is a secret and does not belong in the file)."""
    rate_limits: KeyLimits = Field(default_factory=KeyLimits)
    """Every key's rate limits unless it has its own (``api_keys.<key>.limits``); unlimited by default.
    Counted in the state store, so replicas sharing Redis share them."""
    backends_view: Literal["keys", "admin"] = "keys"
    """Who may read ``GET /v1/backends``: any client key (and the admin token), or the admin only."""
    admin_token: SecretStr | None = None
    """Bearer token for ``/v1/admin/keys`` (create and revoke client keys)."""
    require_api_key: bool | None = None
    """None: required as soon as any key is configured or an admin token is set."""
    metrics_token: SecretStr | None = None
    """Bearer token for ``/metrics`` (the admin token works too)."""
    metrics_public: bool | None = None
    """None: ``/metrics`` (revenue, margins, vendors) is public only while no client key is
    required; once keys are, it needs ``metrics_token`` or the admin token."""
    expose_upstream_cost: bool | None = None
    """Send what the vendor cost (``x-boltgate-upstream-cost-usd``, the vendor-reported cost and
    the body's ``billing.upstream_cost_usd``) to clients. None: only while no client key is required."""

    @field_validator("api_keys", mode="wrap")
    @classmethod
    def _keys_by_position(cls, value: object, handler: ValidatorFunctionWrapHandler) -> dict[str, KeyPolicy]:
        """``["bg-a", "bg-b"]`` is accepted too: keys without a name or a budget. A problem names
        its key by place, ``<key 3>`` (``proxy.key_positions``): the key is a secret."""
        if isinstance(value, list | tuple):
            value = {str(key): {"name": f"key-{index}"} for index, key in enumerate(value, 1)}
        keys: dict[str, KeyPolicy] = validated_by_position(value, handler)
        return keys

    @property
    def keys_required(self) -> bool:
        if self.require_api_key is not None:
            return self.require_api_key
        return bool(self.api_keys) or self.admin_token is not None

    @property
    def metrics_open(self) -> bool:
        return self.metrics_public if self.metrics_public is not None else not self.keys_required

    @property
    def upstream_cost_shown(self) -> bool:
        return self.expose_upstream_cost if self.expose_upstream_cost is not None else not self.keys_required

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_kwargs: dict[str, Any] = getattr(init_settings, "init_kwargs", {})
        path = init_kwargs.get("config") or os.environ.get("BOLTGATE_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path:
            if Path(path).is_dir():
                raise IsADirectoryError(f"config file {path} is a directory, not a TOML file")
            if not Path(path).is_file():
                raise FileNotFoundError(f"config file {path} does not exist")
            file = TomlConfigSettingsSource(settings_cls, toml_file=Path(path))
            refuse_secrets(file.toml_data, Path(path))
            sources.append(file)
        return tuple(sources)

    def enabled_routes(self) -> list[RouteConfig]:
        routes = [route for route in self.routes if route.is_enabled]
        if self.local_model_dir is not None and not any(route.vendor == LOCAL for route in routes):
            routes.append(RouteConfig(vendor=LOCAL, priority=self.local_priority,
                                      options={"model_dir": str(self.local_model_dir)}))
        return routes
