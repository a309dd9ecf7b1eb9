"""Build the running gateway from settings: state, routes (vendor x region), router, images.

With no enabled route and no local model, the built-in vendor simulators are started on loopback
and routed to instead, so that every feature can be tried on a fresh machine with no keys.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from backends.base import Backend, Capabilities
from backends.vendors.backend import VendorBackend, route_policy
from backends.vendors.http import HttpClientKind, make_http_client
from backends.vendors.output_fetch import FetchLimits
from backends.vendors.registry import VENDOR_SPECS
from core.state.base import StateStore
from core.state.ledger_store import LedgerStore
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from proxy.billing import Billing
from proxy.gateway import Gateway
from proxy.images.links import ImageLinks
from proxy.images.store import DirectoryImageStore, ImageStore, StateImageStore
from proxy.jobs.service import JobService
from proxy.jobs.wiring import start_jobs
from proxy.metrics import STATE_EVICTIONS, labelled
from proxy.owed_voids import OWED_VOIDS_DIRECTORY, OwedVoidsJournal
from proxy.rate_limits import KeyRateLimiter
from proxy.routing.health import RouteHealth
from proxy.routing.prober import HealthProber
from proxy.routing.route import Route
from proxy.routing.router import Router
from proxy.settings import OutboundConfig, RegionConfig, RouteConfig, Settings
from proxy.shutdown import UNWIND_S, Closer, cancel_and_wait, close_all
from proxy.unconfirmed_charges import UnconfirmedCharges

log = logging.getLogger("boltgate")


@dataclass(slots=True)
class Running:
    """The built gateway plus what must be closed when it stops."""

    gateway: Gateway
    jobs: JobService
    closers: list[Closer] = field(default_factory=list)
    notice: str = ""

    async def aclose(self) -> None:
        await close_all(self.closers)


@dataclass(frozen=True, slots=True)
class Stores:
    """Where state lives: short-lived shared state, durable records, and the money."""

    shared: StateStore
    """Breakers, quarantine, images (but on SQLite, ``images_on_disk``): replicas share it, and
    losing it on a restart is harmless."""
    durable: StateStore
    """Client keys, revocations, idempotency records: must survive a restart."""
    book: LedgerStore
    """Reservations, charges, spend and losses: must survive a restart."""

    @classmethod
    def in_memory(cls) -> Stores:
        """Everything in memory, gone when the process stops (tests, throwaway runs)."""
        memory = MemoryStateStore()
        return cls(memory, memory, MemoryLedgerStore())

    async def aclose(self) -> None:
        await self.book.aclose()
        await self.durable.aclose()
        if self.shared is not self.durable:
            await self.shared.aclose()


def build_stores(settings: Settings) -> Stores:
    """Redis for replicas; a SQLite file (plus memory for what is short-lived) for one process;
    memory only for tests and throwaway runs."""
    retention_s = settings.charge_log_retention_days * 86400
    if settings.state_backend == "redis":
        from core.state.redis import RedisStateStore
        from core.state.redis_ledger import RedisLedgerStore

        timeout_s = settings.state_timeout_s
        redis = RedisStateStore.from_url(settings.redis_url, timeout_s=timeout_s)
        return Stores(redis, redis, RedisLedgerStore(redis.client, redis.key_prefix, timeout_s=timeout_s,
                                                     charge_log_retention_s=retention_s))
    if settings.state_backend == "sqlite":
        from core.state.sqlite import SqliteStateStore
        from core.state.sqlite_database import SqliteDatabase
        from core.state.sqlite_ledger import SqliteLedgerStore

        database = SqliteDatabase.in_directory(settings.data_dir, busy_timeout_s=settings.state_timeout_s)
        durable = SqliteStateStore(database)
        # Several workers share nothing in memory: their breakers, quarantines and limits go in the file too.
        shared = durable if several_workers(settings) else forgetting_memory(settings)
        return Stores(shared, durable, SqliteLedgerStore(database, charge_log_retention_s=retention_s))
    memory = forgetting_memory(settings)
    return Stores(memory, memory, MemoryLedgerStore(charge_log_retention_s=retention_s))


def forgetting_memory(settings: Settings) -> MemoryStateStore:
    """The in-process store, its images held within ``memory_image_bytes`` (LRU, counted)."""
    return MemoryStateStore(max_evictable_bytes=settings.memory_image_bytes, on_evict=count_eviction)


def count_eviction(key: str) -> None:
    labelled(STATE_EVICTIONS, key.split(":", 1)[0]).inc()


def fetch_limits(outbound: OutboundConfig) -> FetchLimits:
    return FetchLimits(max_image_bytes=outbound.max_image_bytes, max_answer_bytes=outbound.max_answer_bytes,
                       max_redirects=outbound.max_redirects, max_image_pixels=outbound.max_image_pixels)


def build_backend(route: RouteConfig, region: RegionConfig, api_key: str | None,
                  http_client: HttpClientKind, outbound: OutboundConfig | None = None) -> Backend:
    """One route region. A vendor's HTTP client (of the ``http_client`` kind) carries the route's
    outbound policy: the region's own origin and the trusted hosts may be http and private."""
    if route.vendor == "local":
        from backends.local.inprocess import LocalPipelineBackend

        return LocalPipelineBackend.from_options(route.options, region=region.name)
    spec = VENDOR_SPECS.get(route.vendor)
    if spec is None:
        raise ValueError(f"no adapter for vendor {route.vendor!r}")
    outbound = outbound or OutboundConfig()
    limits = fetch_limits(outbound)
    policy = route_policy(region.base_url, [*route.trusted_hosts, *outbound.allowed_fetch_hosts])
    return VendorBackend(
        spec, region=region.name, base_url=region.base_url, api_key=api_key,
        timeout_s=route.timeout_s, options=route.options, poll_interval_s=route.poll_interval_s, limits=limits,
        http_client=make_http_client(http_client, policy=policy, max_answer_bytes=limits.max_answer_bytes,
                                     max_redirects=limits.max_redirects),
    )


KeyedRoute = tuple[RouteConfig, str | None]
"""A vendor account and the key to call it with (None for keyless backends)."""


def keyed_from_environment(configs: list[RouteConfig]) -> list[KeyedRoute]:
    """Each route with the key its ``key_env`` variable holds."""
    return [(config, config.api_key()) for config in configs]


def build_routes(accounts: list[KeyedRoute], http_client: HttpClientKind,
                 outbound: OutboundConfig | None = None) -> list[Route]:
    """One ``Route`` per vendor region; an account's regions share its key and the outbound limits,
    each region calls through its own pool of the ``http_client`` kind."""
    routes = []
    for account, (config, api_key) in enumerate(accounts):
        for rank, region in enumerate(config.regions):
            backend = build_backend(config, region, api_key, http_client, outbound)
            routes.append(Route(backend, config.priority, config.weight, config.max_attempts,
                                account=f"{account}:{config.vendor}", region_rank=rank,
                                timeout_s=config.timeout_s,
                                max_billable_s_per_image=config.max_billable_s_per_image))
    return routes


@dataclass(slots=True)
class Warming:
    """Backends loading in the background (the in-process pipeline): serving starts at once,
    and a request that arrives before the model is ready waits for it within its deadline."""

    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def cancel_all(self) -> None:
        """Stop the loads still running (a load's failure was reported as it happened)."""
        await cancel_and_wait(self.tasks, within_s=UNWIND_S, what="model loading")


def _start_loading(routes: list[Route]) -> Warming:
    warming = Warming()
    for route in routes:
        start = getattr(route.backend, "start", None)
        if start is not None:
            task = asyncio.create_task(start(), name=f"load {route.key}")
            task.add_done_callback(_report_failed_load)
            warming.tasks.append(task)
    return warming


def _report_failed_load(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed; its requests will fail over: %s", task.get_name(), task.exception())


@dataclass(frozen=True, slots=True)
class Overrides:
    """Parts handed in instead of built from the settings; everything else is wired as usual.

    ``routes`` replace the routes the settings describe (tests serve scripted backends through
    the real billing, router and image store). The gateway closes them when it stops.
    """

    routes: list[Route] | None = None


def several_workers(settings: Settings) -> bool:
    return settings.workers == "auto" or settings.workers > 1


def images_on_disk(settings: Settings) -> bool:
    """Images go to ``image_dir`` when asked, and always on the SQLite store: the charges, job
    ends and idempotency records pointing at them are in its file and outlive the process, so a
    restart must not take the images a client paid for (in memory, a job finished before a kill
    answered URLs that were gone, and a replay its key's images no more). On disk rather than in
    the file: megabytes of images stay out of the ledger's transactions, and with several
    workers any worker can serve the download."""
    return settings.image_store == "directory" or settings.state_backend == "sqlite"


def image_directory(settings: Settings) -> Path:
    """``image_dir``, or ``images`` under ``data_dir`` (kept, and mounted, with the ledger)."""
    return settings.image_dir if settings.image_dir is not None else settings.data_dir / "images"


def assemble_gateway(settings: Settings, stores: Stores, routes: list[Route]) -> Gateway:
    """The object graph over built parts: image store, billing, router, gateway."""
    state = stores.shared
    images: ImageStore = (
        DirectoryImageStore(image_directory(settings), settings.image_ttl_s)
        if images_on_disk(settings)
        else StateImageStore(state, settings.image_ttl_s)
    )
    billing = Billing(stores.book, stores.durable, settings.pricing, settings.api_keys,
                      require_key=settings.keys_required)
    billing.check_priced(route.vendor for route in routes)
    health = RouteHealth(state, settings.breaker)
    router = Router(
        routes, health, settings.retry,
        policy=settings.routing_policy, price_of=billing.price_of,
        content_filter_action=settings.content_filter_action, on_loss=billing.record_loss,
        balanced=settings.balanced, hedging=settings.hedging, on_hedge_loss=billing.record_hedge_loss,
        max_image_pixels=settings.outbound.max_image_pixels,
    )
    rate_limiter = KeyRateLimiter(state, settings.rate_limits,
                                  lease_ttl_s=settings.deadline_s + settings.reservation_grace_s)
    unconfirmed = UnconfirmedCharges(billing, journal=owed_voids_journal(settings))
    billing.owe_loss = unconfirmed.owe_loss  # a loss the store did not book is owed to it, as a void is
    return Gateway(router, images, state, billing, deadline_s=settings.deadline_s,
                   links=ImageLinks(settings.public_base_url, settings.allowed_hosts),
                   expose_upstream_cost=settings.upstream_cost_shown, reservation_grace_s=settings.reservation_grace_s,
                   rate_limiter=rate_limiter, hedging=settings.hedging, budgets=stores.durable,
                   max_image_pixels=settings.outbound.max_image_pixels,
                   unconfirmed=unconfirmed)


def owed_voids_journal(settings: Settings) -> OwedVoidsJournal | None:
    """Where voids and losses owed are written down (``proxy.owed_voids``); none on the memory
    store, whose charges and losses a killed process takes with it anyway."""
    if settings.state_backend == "memory":
        return None
    return OwedVoidsJournal(settings.data_dir / OWED_VOIDS_DIRECTORY)


def start_probes(settings: Settings, gateway: Gateway, closers: list[Closer]) -> None:
    """Probe every route in the background while the gateway runs (``settings.probes``)."""
    if settings.probes.enabled:
        prober = HealthProber(gateway.router.routes, gateway.router.health, settings.probes)
        prober.start()
        closers.append(Closer("health probes", prober.stop))


async def build_gateway(settings: Settings, overrides: Overrides | None = None) -> Running:
    """Everything the gateway runs on, built once; the simulators stand in when no route is set."""
    overrides = overrides or Overrides()
    stores = build_stores(settings)
    closers = [Closer("state stores", stores.aclose)]
    try:
        routes = (overrides.routes if overrides.routes is not None
                  else build_routes(keyed_from_environment(settings.enabled_routes()), settings.http_client,
                                    settings.outbound))
        closers.extend(closers_of(routes))
        notice = ""
        if serves_simulators(settings, has_routes=bool(routes)):
            routes, notice = _serve_simulators(closers, settings.http_client, settings.outbound)
        warming = _start_loading(routes)
        closers.append(Closer("model loading", warming.cancel_all))
        gateway = assemble_gateway(settings, stores, routes)
        closers.append(Closer("unconfirmed charges", gateway.unconfirmed.aclose,  # before the stores it needs
                              within_s=gateway.unconfirmed.longest_stop_s))
        gateway.unconfirmed.resume()  # the voids a killed process on this data directory still owed
        start_probes(settings, gateway, closers)
        jobs = await start_jobs(settings, gateway, stores.durable)
        closers.extend(jobs.closers())  # closed first: running jobs finish while routes and stores are up
    except BaseException:  # a half-built gateway leaves no simulator, connection or task behind
        await close_all(closers)
        raise
    if notice:
        log.warning(notice)
    return Running(gateway, jobs.service, closers, notice)


def closers_of(routes: list[Route]) -> list[Closer]:
    """Each route's backend (its HTTP pool, its worker connection) to close, named by route."""
    return [Closer(f"route {route.key}", route.backend.aclose) for route in routes]


def serves_simulators(settings: Settings, *, has_routes: bool) -> bool:
    """Whether the built-in simulators stand in for the routes."""
    return settings.simulators == "on" or (settings.simulators == "auto" and not has_routes)


@dataclass(frozen=True, slots=True)
class ServedRoute:
    """A route the gateway will build, known before it is: its name and what it can serve."""

    vendor: str
    region: str
    capabilities: Capabilities

    @property
    def pins(self) -> tuple[str, str]:
        """What ``x-boltgate-route`` may say to ask for it."""
        return self.vendor, f"{self.vendor}/{self.region}"


def served_routes(settings: Settings, overrides: Overrides | None = None) -> list[ServedRoute]:
    """Each route the gateway will build, known before any is built (the OpenAPI document states
    what they serve and their names)."""
    from backends.capability_table import capabilities_by_backend
    from backends.simulators.vendors import VENDORS
    from proxy.demo import DEMO_REGION

    table = capabilities_by_backend()
    if overrides is not None and overrides.routes is not None:
        served = [ServedRoute(route.vendor, route.region, route.backend.capabilities) for route in overrides.routes]
    else:
        served = [ServedRoute(config.vendor, region.name, table[config.vendor])
                  for config in settings.enabled_routes() for region in config.regions]
    if serves_simulators(settings, has_routes=bool(served)):
        served = [ServedRoute(vendor, DEMO_REGION, table[vendor]) for vendor in VENDORS]
    return served


def served_capabilities(settings: Settings, overrides: Overrides | None = None) -> list[Capabilities]:
    """What each route the gateway will build can serve."""
    return [route.capabilities for route in served_routes(settings, overrides)]


def _serve_simulators(closers: list[Closer], http_client: HttpClientKind,
                      outbound: OutboundConfig) -> tuple[list[Route], str]:
    """Routes to the built-in simulators, and the notice that says so."""
    from proxy.demo import start_simulator_demo

    demo = start_simulator_demo()
    closers.append(Closer("vendor simulators", demo.stop))
    routes = build_routes([(config, demo.keys[config.vendor]) for config in demo.configs], http_client, outbound)
    closers.extend(closers_of(routes))
    notice = ("No vendor key and no local model configured: serving from the built-in vendor "
              f"simulators ({demo.described}). Set a vendor's key variable to route to it for real.")
    return routes, notice
