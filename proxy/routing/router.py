"""The router: order the routes, skip those that cannot serve, retry, fail over, hedge, by one
deadline.

Any failure with ``failover`` set moves on to the next route (retries within a route: see
``proxy.routing.attempts``). A vendor refusing a request our validation accepted
(400/409/422) means that vendor can't, not that the client is wrong: the client hears that 400
only when every route tried refused it. A vendor refusing our key takes the rest of that
account's routes out of this request too, and so does a create whose answer was lost
(``AmbiguousCreate``): that account may be running, and billing, this request already.
Every route of one request sends the same idempotency key (``core.create_key``) to the vendors
that honour one.

Before a route is tried, its breaker must let it through (a half-open route admits a few trial
requests across replicas) and the caller's ``admit`` hook may refuse it (the key's budget
cannot cover that route's price): the route is skipped with its reason (and a half-open trial it
took is given back), and when every route was refused for credit, that refusal goes back to the
client (402).

Hedging: with a ``HedgeGate``, a route that has not answered by its threshold (its recent p95)
gets company: the next route starts too, if the gate's budgets allow; the first success wins
and the loser is cancelled (its vendor job cancelled on the way out where the vendor publishes
a cancel) and booked as the gateway's loss, never the client's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backends.base import BackendResult
from core.create_key import create_key_for_request
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    BoltgateError,
    ContentFiltered,
    ContentPolicyViolation,
    InsufficientCredits,
    PriceCeilingExceeded,
    RouteAttempt,
    UnsupportedRequest,
    VendorAuthError,
    VendorRejectedRequest,
)
from core.image_header import DEFAULT_MAX_PIXELS
from core.request import ImageRequest
from proxy.metrics import FAILOVERS, HEDGES_STARTED, HEDGES_WON, labelled
from proxy.routing.attempts import (
    HedgeLossRecorder,
    LossRecorder,
    PriceOf,
    RouteAttempts,
    RoutedResult,
    backend_error_behind,
)
from proxy.routing.choice import DEFAULT_CHOICE, RoutingChoice
from proxy.routing.exhausted import RouteFailure, exhausted
from proxy.routing.health import RouteHealth, RouteStatus
from proxy.routing.policy import order_balanced, order_by_latency, order_by_price, order_by_priority
from proxy.routing.route import Route
from proxy.routing.stats import LatencyBoard, RouteStats
from proxy.settings import BalancedConfig, HedgingConfig, RetryConfig

__all__ = ["Admit", "HedgeGate", "HedgeLossRecorder", "LossRecorder", "PriceOf", "RoutedResult", "Router",
           "backend_error_behind"]

Admit = Callable[[Route], Awaitable[None]]
"""Called before a route is tried; raises ``InsufficientCredits`` to skip it."""
Runners = dict[asyncio.Task[BackendResult], tuple[Route, RouteStatus]]
"""The attempts racing now, each with its route and the status its breaker admitted it with."""


class HedgeGate(Protocol):
    """Whether one request may start a hedge now (its budgets: see ``proxy.hedging``)."""

    async def allow(self, primary: Route, hedge: Route) -> bool: ...


@dataclass(slots=True)
class _Trip:
    """What one request met on its way through the routes."""

    skipped: list[str]
    failures: list[RouteFailure] = field(default_factory=list)
    rejections: list[VendorRejectedRequest] = field(default_factory=list)
    closed_accounts: dict[str, str] = field(default_factory=dict)
    """Accounts this request is not sent to again, each with the reason (our key refused there,
    or a create whose answer was lost there)."""
    refusal: InsufficientCredits | None = None


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
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.routes = list(routes)
        self.health = health
        self.retry = retry
        self.policy = policy
        self.price_of = price_of
        self.content_filter_action = content_filter_action
        self.stats = stats or RouteStats(health.store)
        """Every attempt's latency and outcome, shared through the state store."""
        self.board = LatencyBoard(self.stats)
        self.balanced = balanced or BalancedConfig()
        self.hedging = hedging or HedgingConfig()
        self.attempts = RouteAttempts(health, self.stats, retry, on_loss=on_loss, on_hedge_loss=on_hedge_loss,
                                      max_image_pixels=max_image_pixels)

    async def candidates(
        self, request: ImageRequest, choice: RoutingChoice = DEFAULT_CHOICE
    ) -> tuple[list[Route], list[str]]:
        """The routes that may serve ``request``, in the order to try them, and why others can't;
        ``choice`` is what the request asked for (a policy, or one vendor)."""
        able: list[Route] = []
        skipped: list[str] = []
        priced_out = []
        incapable = 0
        eligible = choice.pinned_routes(self.routes)
        for route in eligible:
            reason = route.backend.capabilities.refusal(request)
            incapable += reason is not None
            reason = reason or await self.health.unavailable_reason(route)
            if reason is None and request.max_price_usd is not None and self.price_of is not None:
                price = self.price_of(route, request)
                if price > request.max_price_usd:
                    priced_out.append(price)
                    reason = f"price {price} USD above the ceiling {request.max_price_usd}"
            if reason is None:
                able.append(route)
            else:
                skipped.append(f"{route.key}: {reason}")
        if eligible and incapable == len(eligible):
            raise UnsupportedRequest(skipped)
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
        *, admit: Admit | None = None, hedge: HedgeGate | None = None, create_key: str | None = None,
    ) -> RoutedResult:
        """Serve ``request`` on the first route that can; ``plan`` is ``candidates()``'s answer
        when the caller already asked for it; ``admit`` is awaited before each route is tried;
        with a ``hedge`` gate, a slow route may be raced by the next. ``create_key``: the vendor
        idempotency key of this request's creates (``core.create_key``; fresh by default)."""
        with create_key_for_request(create_key):
            return await self._generate(request, deadline, plan, admit=admit, hedge=hedge)

    async def _generate(
        self, request: ImageRequest, deadline: Deadline, plan: tuple[list[Route], list[str]] | None,
        *, admit: Admit | None, hedge: HedgeGate | None,
    ) -> RoutedResult:
        ordered, skipped = plan if plan is not None else await self.candidates(request)
        trip = _Trip(list(skipped))
        if not ordered:
            raise await self.unavailable(request, "No route can serve this request", trip.skipped)
        routed = RoutedResult(result=BackendResult(images=[]), route=ordered[0])
        queue = list(ordered)
        while queue and not deadline.expired():
            admitted = await self._next_admitted(queue, trip, routed, admit)
            if admitted is None:
                break
            if hedge is None or not queue:  # nothing can race this attempt
                if await self._serve_alone(admitted, request, deadline, routed, trip, has_fallback=bool(queue)):
                    return routed
                continue
            runners: Runners = {self._start(admitted, request, deadline, routed, bool(queue)): admitted}
            won = False
            try:
                await self._hedge_if_slow(runners, queue, hedge, request, deadline, routed, trip)
                won = await self._first_success(runners, routed, trip)
                if won:
                    return routed
            finally:  # a hedge's loser, or everything when the request itself is cancelled
                await self._cancel(runners, request, routed, lost_race=won)
        if trip.refusal is not None and all(a.outcome == "insufficient_credits" for a in routed.attempts):
            raise trip.refusal
        if trip.rejections and len(trip.rejections) == len(routed.attempts):
            raise trip.rejections[-1]  # every route tried refused the request itself
        reason = "The request's deadline passed" if deadline.expired() else "Every route failed"
        raise await self.unavailable(request, reason, trip.skipped, routed.attempts, trip.failures)

    async def _next_admitted(self, queue: list[Route], trip: _Trip, routed: RoutedResult,
                             admit: Admit | None) -> tuple[Route, RouteStatus] | None:
        """The next route of ``queue`` that may be tried now (taken off the queue): its account's
        key not refused on this request, its breaker letting it through, ``admit`` agreeing."""
        while queue:
            route = queue.pop(0)
            closed = trip.closed_accounts.get(route.account or route.key)
            if closed is not None:
                trip.skipped.append(f"{route.key}: {closed}")
                continue
            status = await self.health.admit(route)
            if status is None:  # opened since the plan, or half-open with its trial requests taken
                why = await self.health.unavailable_reason(route) or "half-open, its trial requests are taken"
                trip.skipped.append(f"{route.key}: {why}")
                continue
            if admit is not None:
                try:
                    await admit(route)
                except InsufficientCredits as refused:
                    await self.health.release_trial(route, status)  # a half-open trial not sent
                    trip.refusal = refused
                    routed.attempts.append(RouteAttempt(route.vendor, route.region, "insufficient_credits",
                                                        refused.status_code, refused.message[:160]))
                    continue
            return route, status
        return None

    async def _serve_alone(self, admitted: tuple[Route, RouteStatus], request: ImageRequest, deadline: Deadline,
                           routed: RoutedResult, trip: _Trip, *, has_fallback: bool) -> bool:
        """One attempt that nothing races, awaited in the request's own task: a task of its own,
        created, waited on and gathered, costs about 40 us of CPU and two turns of the event
        loop (4 us awaited directly), more than the rest of a served request's routing. The
        request's cancellation reaches the attempt directly. True once it succeeded, as
        ``_first_success`` answers."""
        route, status = admitted
        try:
            result = await self.attempts.serve_on(route, status, request, deadline, routed, has_fallback)
        except Exception as error:
            await self._attempt_failed(route, error, trip)
            return False
        await self._attempt_served(route, status, result, routed)
        return True

    def _start(self, admitted: tuple[Route, RouteStatus], request: ImageRequest, deadline: Deadline,
               routed: RoutedResult, has_fallback: bool) -> asyncio.Task[BackendResult]:
        route, status = admitted
        return asyncio.create_task(self.attempts.serve_on(route, status, request, deadline, routed, has_fallback),
                                   name=f"attempt {route.key}")

    async def _hedge_if_slow(
        self, runners: Runners, queue: list[Route], hedge: HedgeGate, request: ImageRequest, deadline: Deadline,
        routed: RoutedResult, trip: _Trip,
    ) -> None:
        """Wait for the first route up to its threshold; then, if the gate allows, start the next
        (the gate holds the credit for both racing routes; see ``proxy.hedging``)."""
        (primary, (route, _)), = runners.items()
        threshold = await self.hedge_threshold(route)
        done, _ = await asyncio.wait({primary}, timeout=min(threshold, deadline.remaining()))
        if done or deadline.expired():
            return
        admitted = await self._next_admitted(queue, trip, routed, None)
        if admitted is None:
            return
        if not await hedge.allow(route, admitted[0]):
            await self.health.release_trial(*admitted)  # admitted again if it is failed over to
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

    async def _first_success(self, runners: Runners, routed: RoutedResult, trip: _Trip) -> bool:
        """Wait for the running attempts; True once one succeeded (it is in ``routed``). A failure
        that must reach the client is raised; others are noted and the rest keep running."""
        pending = set(runners)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                route, status = runners.pop(task)
                error = task.exception()
                if error is None:
                    await self._attempt_served(route, status, task.result(), routed)
                    return True
                await self._attempt_failed(route, error, trip)
        return False

    async def _attempt_served(self, route: Route, status: RouteStatus, result: BackendResult,
                              routed: RoutedResult) -> None:
        routed.result, routed.route = result, route
        await self.health.record_success(route, status)
        if routed.hedged_to is route:
            labelled(HEDGES_WON, route.vendor).inc()

    async def _attempt_failed(self, route: Route, error: BaseException, trip: _Trip) -> None:
        """Note a failure to fail over from; raise one that must reach the client."""
        if isinstance(error, ContentFiltered) and self.content_filter_action == "reject":
            raise ContentPolicyViolation(
                "The image was refused by the vendor's safety filter", param="prompt") from error
        if not isinstance(error, BackendError) or not error.failover:
            raise error
        if isinstance(error, VendorRejectedRequest):
            trip.rejections.append(error)
        if isinstance(error, VendorAuthError):
            trip.closed_accounts.setdefault(route.account or route.key,
                                            "its account's key was refused on this request")
        elif isinstance(error, AmbiguousCreate):
            trip.closed_accounts.setdefault(route.account or route.key,
                                            "its account may already be running this request's create")
        trip.failures.append(RouteFailure(error, time.monotonic()))
        labelled(FAILOVERS, route.vendor, error.outcome).inc()

    async def _cancel(self, runners: Runners, request: ImageRequest, routed: RoutedResult, *, lost_race: bool) -> None:
        """Cancel attempts still running; job vendors' jobs are cancelled at the vendor on the
        way out (``backends.vendors.polling``). An attempt that lost a hedge race is booked as
        the gateway's loss, never the client's: by what its vendor said when the cancellation
        carried that (a job cancelled for free, or left running and billed), else, when it was
        under way or had finished, at its estimated cost (no vendor promises an aborted call is
        free). A loser cancelled while it waited between retries cost nothing more."""
        if not runners:
            return
        under_way = set(routed.in_flight)
        finished = {task for task in runners if task.done() and not task.cancelled() and task.exception() is None}
        if lost_race:
            routed.losers.update(route.key for route, _ in runners.values())
        for task in runners:
            task.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        for task, (route, _) in runners.items():
            if not lost_race:
                continue
            routed.attempts.append(RouteAttempt(route.vendor, route.region, "cancelled", detail="lost the race"))
            unbooked = route.key not in routed.booked and (route.key in under_way or task in finished)
            if unbooked and self.attempts.on_hedge_loss is not None:
                await self.attempts.on_hedge_loss(route, request, None)
        runners.clear()
