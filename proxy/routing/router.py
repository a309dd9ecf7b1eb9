"""The router: order the routes, skip those that cannot serve, retry, fail over, by one deadline.

Retries on one route happen only for retryable failures (connect error, timeout, 408, 429, 5xx,
a body we cannot read), with jittered exponential backoff that gives way to the vendor's
``Retry-After``. Any failure with ``failover`` set moves on to the next route; one without it
(the vendor rejected the request as invalid) goes back to the client at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from tenacity import AsyncRetrying, retry_if_exception

from backends.base import BackendResult
from core.deadline import Deadline
from core.errors import (
    BackendError,
    BoltgateError,
    ContentFiltered,
    ContentPolicyViolation,
    PriceCeilingExceeded,
    RouteAttempt,
    VendorAuthError,
    VendorProtocolError,
    VendorRateLimited,
    VendorTimeout,
)
from core.request import ImageRequest
from proxy.images.blank import reject_blank_images
from proxy.metrics import BACKEND_ATTEMPT_SECONDS, BACKEND_ATTEMPTS, FAILOVERS, HEDGES_STARTED, HEDGES_WON, labelled
from proxy.routing.backoff import RetryAfterOrBackoff, StopWhenOutOfTime
from proxy.routing.choice import DEFAULT_CHOICE, RoutingChoice
from proxy.routing.exhausted import RouteFailure, exhausted
from proxy.routing.health import RouteHealth, RouteStatus
from proxy.routing.policy import order_balanced, order_by_latency, order_by_price, order_by_priority
from proxy.routing.route import Route
from proxy.routing.stats import LatencyBoard, RouteStats
from proxy.settings import BalancedConfig, HedgingConfig, RetryConfig

PriceOf = Callable[[Route, ImageRequest], Decimal]
LossRecorder = Callable[[Route, ImageRequest, BackendError], Awaitable[None]]
HedgeLossRecorder = Callable[[Route, ImageRequest], Awaitable[None]]
"""Books the estimated cost of an attempt cancelled mid-flight (a hedge's loser)."""


class HedgeGate(Protocol):
    """Whether one request may start a hedge now (its budgets: see ``proxy.hedging``)."""

    async def allow(self, primary: Route, hedge: Route) -> bool: ...


@dataclass(slots=True)
class RoutedResult:
    result: BackendResult
    route: Route
    attempts: list[RouteAttempt] = field(default_factory=list)
    backend_seconds: float = 0.0
    """Time spent waiting on backends (the rest of the request is the gateway's own)."""
    hedged_to: Route | None = None
    """The route a hedge started on, if one did."""


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, BackendError) and error.retryable


class Router:
    def __init__(
        self,
        routes: Sequence[Route],
        health: RouteHealth,
        retry: RetryConfig,
        *,
        policy: str = "priority",
        price_of: PriceOf | None = None,
        content_filter_action: str = "failover",
        on_loss: LossRecorder | None = None,
        stats: RouteStats | None = None,
        balanced: BalancedConfig | None = None,
        hedging: HedgingConfig | None = None,
        on_hedge_loss: HedgeLossRecorder | None = None,
    ) -> None:
        self.routes = list(routes)
        self.stats = stats or RouteStats(health.store)
        """Every attempt's latency and outcome, shared through the state store."""
        self.board = LatencyBoard(self.stats)
        self.balanced = balanced or BalancedConfig()
        self.hedging = hedging or HedgingConfig()
        self.on_hedge_loss = on_hedge_loss
        self.health = health
        self.retry = retry
        self.policy = policy
        self.price_of = price_of
        self.content_filter_action = content_filter_action
        self.on_loss = on_loss

    async def candidates(
        self, request: ImageRequest, choice: RoutingChoice = DEFAULT_CHOICE
    ) -> tuple[list[Route], list[str]]:
        """The routes that may serve ``request``, in the order to try them, and why others can't;
        ``choice`` is what the request asked for (a policy, or one vendor)."""
        able: list[Route] = []
        skipped: list[str] = []
        priced_out: list[Decimal] = []
        for route in choice.pinned_routes(self.routes):
            reason = route.backend.capabilities.refusal(request) or await self.health.unavailable_reason(route)
            if reason is None and request.max_price_usd is not None and self.price_of is not None:
                price = self.price_of(route, request)
                if price > request.max_price_usd:
                    priced_out.append(price)
                    reason = f"price {price} USD above the ceiling {request.max_price_usd}"
            if reason is None:
                able.append(route)
            else:
                skipped.append(f"{route.key}: {reason}")
        if not able and priced_out:
            raise PriceCeilingExceeded(
                f"every route costs more than max_price_usd={request.max_price_usd}; "
                f"the cheapest available price is {min(priced_out)} USD",
                param="max_price_usd",
            )
        return await self._order(able, request, choice.policy or self.policy), skipped

    async def _order(self, able: list[Route], request: ImageRequest, policy: str) -> list[Route]:
        price_of = self.price_of
        if policy in ("fastest", "balanced"):
            summaries = await self.board.summaries(self.routes)

            def latency_of(route: Route) -> float | None:
                summary = summaries.get(route.key)
                return None if summary is None else summary.estimate_s

            if policy == "fastest" or price_of is None:
                return order_by_latency(able, latency_of)
            return order_balanced(able, latency_of, lambda route: price_of(route, request),
                                  latency_weight=self.balanced.latency_weight, price_weight=self.balanced.price_weight)
        if policy == "cheapest" and price_of is not None:
            return order_by_price(able, lambda route: price_of(route, request))
        return order_by_priority(able)

    async def unavailable(
        self, request: ImageRequest, reason: str, skipped: list[str],
        attempts: list[RouteAttempt] | None = None, failures: list[RouteFailure] | None = None,
    ) -> BoltgateError:
        """The 429 or 503 for a request no route served, saying when to come back."""
        back_in = []
        for route in self.routes:
            if route.backend.capabilities.refusal(request) is None:
                status = await self.health.status(route)
                if status.back_in is not None:
                    back_in.append(status.back_in)
        return exhausted(reason, attempts or [], skipped, failures or [], back_in=back_in,
                         default_wait=self.retry.unavailable_retry_after_s)

    async def generate(
        self, request: ImageRequest, deadline: Deadline, plan: tuple[list[Route], list[str]] | None = None,
        hedge: HedgeGate | None = None,
    ) -> RoutedResult:
        """Serve ``request`` on the first route that can; ``plan`` is ``candidates()``'s answer
        when the caller already asked for it (to reserve credits for those routes). With a
        ``hedge`` gate, a route that has not answered by its threshold gets company: the next
        route starts too, the first success wins and the other is cancelled."""
        ordered, skipped = plan if plan is not None else await self.candidates(request)
        skipped = list(skipped)
        if not ordered:
            raise await self.unavailable(request, "No route can serve this request", skipped)
        routed = RoutedResult(result=BackendResult(images=[]), route=ordered[0])
        failures: list[RouteFailure] = []
        queue = list(ordered)
        while queue and not deadline.expired():
            admitted = await self._next_admitted(queue, skipped)
            if admitted is None:
                break
            runners = {self._start(admitted, request, deadline, routed, bool(queue)): admitted}
            won = False
            try:
                if hedge is not None and queue:
                    await self._hedge_if_slow(runners, queue, hedge, request, deadline, routed, skipped)
                won = await self._first_success(runners, request, routed, failures)
                if won:
                    return routed
            finally:  # a hedge's loser, or everything when the request itself is cancelled
                await self._cancel(runners, request, routed, lost_race=won)
        reason = "The request's deadline passed" if deadline.expired() else "Every route failed"
        raise await self.unavailable(request, reason, skipped, routed.attempts, failures)

    async def _next_admitted(self, queue: list[Route], skipped: list[str]) -> tuple[Route, RouteStatus] | None:
        """The next route of ``queue`` its breaker lets through now (taken off the queue)."""
        while queue:
            route = queue.pop(0)
            status = await self.health.admit(route)
            if status is not None:
                return route, status
            # opened since the plan, or half-open with its trial requests taken
            why = await self.health.unavailable_reason(route) or "half-open, its trial requests are taken"
            skipped.append(f"{route.key}: {why}")
        return None

    def _start(self, admitted: tuple[Route, RouteStatus], request: ImageRequest, deadline: Deadline,
               routed: RoutedResult, has_fallback: bool) -> asyncio.Task[BackendResult]:
        route, status = admitted
        return asyncio.create_task(self._serve_on(route, status, request, deadline, routed, has_fallback),
                                   name=f"attempt {route.key}")

    async def _hedge_if_slow(
        self, runners: dict[asyncio.Task[BackendResult], tuple[Route, RouteStatus]], queue: list[Route],
        hedge: HedgeGate, request: ImageRequest, deadline: Deadline, routed: RoutedResult, skipped: list[str],
    ) -> None:
        """Wait for the first route up to its threshold; then, if the gate allows, start the next."""
        (primary, (route, _)), = runners.items()
        threshold = await self.hedge_threshold(route)
        done, _ = await asyncio.wait({primary}, timeout=min(threshold, deadline.remaining()))
        if done or deadline.expired():
            return
        admitted = await self._next_admitted(queue, skipped)
        if admitted is None:
            return
        if not await hedge.allow(route, admitted[0]):
            queue.insert(0, admitted[0])  # not hedged: it stays the next failover target
            return
        labelled(HEDGES_STARTED, admitted[0].vendor).inc()
        routed.hedged_to = admitted[0]
        runners[self._start(admitted, request, deadline, routed, bool(queue))] = admitted

    async def hedge_threshold(self, route: Route) -> float:
        """How long ``route`` may take before a hedge starts: ``hedging.after_s``, else its recent
        p95 (never below ``min_after_s``), else ``fallback_after_s`` before it has a record."""
        if self.hedging.after_s is not None:
            return self.hedging.after_s
        summary = (await self.board.summaries(self.routes)).get(route.key)
        if summary is None or summary.p95_s is None:
            return self.hedging.fallback_after_s
        return max(self.hedging.min_after_s, summary.p95_s)

    async def _first_success(
        self, runners: dict[asyncio.Task[BackendResult], tuple[Route, RouteStatus]], request: ImageRequest,
        routed: RoutedResult, failures: list[RouteFailure],
    ) -> bool:
        """Wait for the running attempts; True once one succeeded (it is in ``routed``). A failure
        that must reach the client is raised; others are noted and the rest keep running."""
        pending = set(runners)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                route, status = runners.pop(task)
                error = task.exception()
                if error is None:
                    routed.result, routed.route = task.result(), route
                    await self.health.record_success(route, status)
                    if routed.hedged_to is route:
                        labelled(HEDGES_WON, route.vendor).inc()
                    return True
                if isinstance(error, ContentFiltered) and self.content_filter_action == "reject":
                    raise ContentPolicyViolation(
                        "The image was refused by the vendor's safety filter", param="prompt") from error
                if not isinstance(error, BackendError) or not error.failover:
                    raise error
                failures.append(RouteFailure(error, time.monotonic()))
                labelled(FAILOVERS, route.vendor, error.outcome).inc()
        return False

    async def _cancel(
        self, runners: dict[asyncio.Task[BackendResult], tuple[Route, RouteStatus]], request: ImageRequest,
        routed: RoutedResult, *, lost_race: bool,
    ) -> None:
        """Cancel attempts still running; job vendors' jobs are cancelled at the vendor on the
        way out (``backends.vendors.polling``). An attempt that lost a hedge race is booked at
        its estimated cost as the gateway's loss (no vendor promises a cancelled job is free),
        never the client's."""
        for task in runners:
            task.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        for route, _ in runners.values():
            if lost_race:
                routed.attempts.append(RouteAttempt(route.vendor, route.region, "cancelled", detail="lost the race"))
                if self.on_hedge_loss is not None:
                    await self.on_hedge_loss(route, request)
        runners.clear()

    async def _serve_on(
        self, route: Route, status: RouteStatus, request: ImageRequest, deadline: Deadline, routed: RoutedResult,
        has_fallback: bool,
    ) -> BackendResult:
        longest_wait = self.retry.max_retry_after_s
        if has_fallback:
            longest_wait = min(longest_wait, self.retry.max_wait_with_fallback_s)
        retrying = AsyncRetrying(
            stop=StopWhenOutOfTime(route.max_attempts, deadline, longest_wait),
            wait=RetryAfterOrBackoff(self.retry),
            retry=retry_if_exception(_is_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(route, status, request, deadline, routed)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(
        self, route: Route, status: RouteStatus, request: ImageRequest, deadline: Deadline, routed: RoutedResult
    ) -> BackendResult:
        started = time.monotonic()
        try:
            try:
                async with asyncio.timeout(deadline.remaining()):
                    result = await route.backend.generate(request, deadline)
            except TimeoutError as exc:
                raise VendorTimeout(f"{route.vendor} ran past the request's deadline") from exc
            if len(result.images) < request.n:
                raise VendorProtocolError(
                    f"{route.vendor} answered {len(result.images)} image(s) for n={request.n}")
            await reject_blank_images(result, request, route.vendor)
        except BackendError as error:
            await self._record_failure(route, status, request, error, started, routed)
            raise
        seconds = time.monotonic() - started
        routed.backend_seconds += seconds
        routed.attempts.append(RouteAttempt(route.vendor, route.region, "ok", 200, seconds=seconds))
        labelled(BACKEND_ATTEMPTS, route.vendor, route.region, "ok").inc()
        labelled(BACKEND_ATTEMPT_SECONDS, route.vendor, route.region).observe(seconds)
        await self.stats.record(route, seconds, ok=True)
        return result

    async def _record_failure(
        self, route: Route, status: RouteStatus, request: ImageRequest, error: BackendError, started: float,
        routed: RoutedResult,
    ) -> None:
        seconds = time.monotonic() - started
        routed.backend_seconds += seconds
        routed.attempts.append(
            RouteAttempt(route.vendor, route.region, error.outcome, error.status, error.message[:160], seconds)
        )
        labelled(BACKEND_ATTEMPTS, route.vendor, route.region, error.outcome).inc()
        labelled(BACKEND_ATTEMPT_SECONDS, route.vendor, route.region).observe(seconds)
        if error.failover and not isinstance(error, ContentFiltered):  # the route's fault, not the request's
            await self.stats.record(route, seconds, ok=False)
        if isinstance(error, VendorAuthError):
            await self.health.quarantine(route, f"{error.outcome} {error.status or ''}: {error.message[:120]}")
        elif error.retryable and not isinstance(error, VendorRateLimited):
            await self.health.record_failure(route, f"{error.outcome}: {error.message[:120]}", status)
        if self.on_loss is not None and error.billed:
            await self.on_loss(route, request, error)
