"""The router: order the routes, skip those that cannot serve, retry, fail over, by one deadline.

Retries on one route happen only for retryable failures (connect error, timeout, 408, 429, 5xx,
a body we cannot read), with jittered exponential backoff that gives way to the vendor's
``Retry-After``; never once the vendor has billed the attempt. Any failure with ``failover`` set
moves on to the next route. A vendor refusing a request our validation accepted (400/409/422)
means that vendor can't, not that the client is wrong: the client hears that 400 only when
every route tried refused it. An attempt the vendor billed anyway is booked as the gateway's
loss, also when the client hangs up while a billed job is left running.

Before a route is tried, the caller's ``admit`` hook may refuse it (the key's budget cannot
cover that route's price): the route is skipped with its reason in the attempts list, and when
every route was refused that way, the refusal goes back to the client (402).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tenacity import AsyncRetrying, retry_if_exception

from backends.base import BackendResult
from core.deadline import Deadline
from core.errors import (
    BackendError,
    ContentFiltered,
    ContentPolicyViolation,
    InsufficientCredits,
    NoBackendAvailable,
    PriceCeilingExceeded,
    RouteAttempt,
    UnsupportedRequest,
    VendorAuthError,
    VendorOutOfCredit,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
)
from core.request import ImageRequest
from proxy.images.blank import reject_blank_images
from proxy.metrics import BACKEND_ATTEMPT_SECONDS, BACKEND_ATTEMPTS, FAILOVERS, labelled
from proxy.routing.backoff import RetryAfterOrBackoff, StopWhenOutOfTime
from proxy.routing.health import RouteHealth
from proxy.routing.policy import order_by_price, order_by_priority
from proxy.routing.route import Route
from proxy.settings import RetryConfig

PriceOf = Callable[[Route, ImageRequest], Decimal]
LossRecorder = Callable[[Route, ImageRequest, BackendError], Awaitable[None]]
Admit = Callable[[Route], Awaitable[None]]
"""Called before a route is tried; raises ``InsufficientCredits`` to skip it."""


@dataclass(slots=True)
class RoutedResult:
    result: BackendResult
    route: Route
    attempts: list[RouteAttempt] = field(default_factory=list)
    backend_seconds: float = 0.0
    """Time spent waiting on backends (the rest of the request is the gateway's own)."""


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
    ) -> None:
        self.routes = list(routes)
        self.health = health
        self.retry = retry
        self.policy = policy
        self.price_of = price_of
        self.content_filter_action = content_filter_action
        self.on_loss = on_loss

    async def candidates(self, request: ImageRequest) -> tuple[list[Route], list[str]]:
        """The routes that may serve ``request``, in the order to try them, and why others can't."""
        able: list[Route] = []
        skipped: list[str] = []
        priced_out: list[Decimal] = []
        incapable = 0
        for route in self.routes:
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
        if self.routes and incapable == len(self.routes):
            raise UnsupportedRequest(skipped)
        if not able and priced_out:
            raise PriceCeilingExceeded(
                f"every route costs more than max_price_usd={request.max_price_usd}; "
                f"the cheapest available price is {min(priced_out)} USD",
                param="max_price_usd",
            )
        if self.policy == "cheapest" and self.price_of is not None:
            price_of = self.price_of
            return order_by_price(able, lambda route: price_of(route, request)), skipped
        return order_by_priority(able), skipped

    async def generate(
        self, request: ImageRequest, deadline: Deadline, plan: tuple[list[Route], list[str]] | None = None,
        *, admit: Admit | None = None,
    ) -> RoutedResult:
        """Serve ``request`` on the first route that can; ``plan`` is ``candidates()``'s answer
        when the caller already asked for it; ``admit`` is awaited before each route is tried."""
        ordered, skipped = plan if plan is not None else await self.candidates(request)
        if not ordered:
            raise NoBackendAvailable("No route can serve this request", skipped=skipped)
        routed = RoutedResult(result=BackendResult(images=[]), route=ordered[0])
        refusal: InsufficientCredits | None = None
        rejections: list[VendorRejectedRequest] = []
        refused_accounts: set[str] = set()
        for index, route in enumerate(ordered):
            if deadline.expired():
                break
            if (route.account or route.key) in refused_accounts:
                skipped.append(f"{route.key}: its account's key was refused on this request")
                continue
            if admit is not None:
                try:
                    await admit(route)
                except InsufficientCredits as refused:
                    refusal = refused
                    routed.attempts.append(RouteAttempt(route.vendor, route.region, "insufficient_credits",
                                                        refused.status_code, refused.message[:160]))
                    continue
            try:
                has_fallback = index < len(ordered) - 1
                routed.result = await self._serve_on(route, request, deadline, routed, has_fallback)
                routed.route = route
                await self.health.record_success(route)
                return routed
            except ContentFiltered as error:
                if self.content_filter_action == "reject":
                    raise ContentPolicyViolation(
                        "The image was refused by the vendor's safety filter", param="prompt"
                    ) from error
                labelled(FAILOVERS, route.vendor, error.outcome).inc()
            except BackendError as error:
                if not error.failover:
                    raise
                if isinstance(error, VendorRejectedRequest):
                    rejections.append(error)
                if isinstance(error, VendorAuthError):
                    refused_accounts.add(route.account or route.key)
                labelled(FAILOVERS, route.vendor, error.outcome).inc()
        if refusal is not None and all(a.outcome == "insufficient_credits" for a in routed.attempts):
            raise refusal
        if rejections and len(rejections) == len(routed.attempts):
            raise rejections[-1]  # every route tried refused the request itself
        reason = "The request's deadline passed" if deadline.expired() else "Every route failed"
        raise NoBackendAvailable(reason, routed.attempts, skipped)

    async def _serve_on(
        self, route: Route, request: ImageRequest, deadline: Deadline, routed: RoutedResult, has_fallback: bool
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
                return await self._attempt(route, request, deadline, routed)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(
        self, route: Route, request: ImageRequest, deadline: Deadline, routed: RoutedResult
    ) -> BackendResult:
        started = time.monotonic()
        try:
            try:
                async with asyncio.timeout(deadline.remaining()):
                    result = await route.backend.generate(request, deadline)
            except TimeoutError as exc:
                left_behind = backend_error_behind(exc)  # e.g. a billed job it had to abandon
                if left_behind is not None:
                    raise left_behind from exc
                raise VendorTimeout(f"{route.vendor} ran past the request's deadline") from exc
            except asyncio.CancelledError as cancelled:
                left_behind = backend_error_behind(cancelled)
                if left_behind is not None and left_behind.billed:
                    await asyncio.shield(self._record_loss(route, request, left_behind))
                raise
            if len(result.images) < request.n:
                raise VendorProtocolError(
                    f"{route.vendor} answered {len(result.images)} image(s) for n={request.n}")
            await reject_blank_images(result, request, route.vendor)
        except BackendError as error:
            await self._record_failure(route, request, error, started, routed)
            raise
        seconds = time.monotonic() - started
        routed.backend_seconds += seconds
        routed.attempts.append(RouteAttempt(route.vendor, route.region, "ok", 200, seconds=seconds))
        labelled(BACKEND_ATTEMPTS, route.vendor, route.region, "ok").inc()
        labelled(BACKEND_ATTEMPT_SECONDS, route.vendor, route.region).observe(seconds)
        return result

    async def _record_failure(
        self, route: Route, request: ImageRequest, error: BackendError, started: float, routed: RoutedResult
    ) -> None:
        seconds = time.monotonic() - started
        routed.backend_seconds += seconds
        routed.attempts.append(
            RouteAttempt(route.vendor, route.region, error.outcome, error.status, error.message[:160], seconds)
        )
        labelled(BACKEND_ATTEMPTS, route.vendor, route.region, error.outcome).inc()
        labelled(BACKEND_ATTEMPT_SECONDS, route.vendor, route.region).observe(seconds)
        if isinstance(error, VendorAuthError):
            await self.health.quarantine(route, brief=isinstance(error, VendorOutOfCredit))
        elif error.retryable and not isinstance(error, VendorRateLimited):
            await self.health.record_failure(route)
        if error.billed:
            await self._record_loss(route, request, error)

    async def _record_loss(self, route: Route, request: ImageRequest, error: BackendError) -> None:
        if self.on_loss is not None:
            await self.on_loss(route, request, error)


def backend_error_behind(exc: BaseException) -> BackendError | None:
    """The ``BackendError`` a cancellation or timeout carries in its chain of causes, if any (a
    job vendor's backend raises its cancellation from the job it had to abandon)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BackendError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
