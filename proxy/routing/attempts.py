"""One route, tried: retries within the deadline, and what each attempt's end is recorded as.

Retries on one route happen only for retryable failures (connect error, timeout, 408, 429, 5xx,
a body we cannot read), with jittered exponential backoff that gives way to the vendor's
``Retry-After``; never once the vendor has billed the attempt, nor after a create whose answer
was lost (``AmbiguousCreate``: the vendor may be running it; it counts against the breaker like
the timeout or reset it was, and is booked as a possible loss). Every attempt feeds the route's
breaker and its shared latency record; one the vendor billed anyway is booked as the gateway's
loss, also when it is cancelled (the client hung up, or another route won a hedge race) while a
billed job is left running, or while a call was under way that the vendor may bill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from tenacity import AsyncRetrying, retry_if_exception

from backends.base import BackendResult
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    ContentFiltered,
    RouteAttempt,
    VendorAuthError,
    VendorOutOfCredit,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
)
from core.image_header import DEFAULT_MAX_PIXELS
from core.request import ImageRequest
from proxy.images.blank import reject_blank_images
from proxy.metrics import BACKEND_ATTEMPT_SECONDS, BACKEND_ATTEMPTS, labelled
from proxy.routing.backoff import RetryAfterOrBackoff, StopWhenOutOfTime
from proxy.routing.health import RouteHealth, RouteStatus
from proxy.routing.route import Route
from proxy.routing.stats import RouteStats
from proxy.settings import RetryConfig

PriceOf = Callable[[Route, ImageRequest], Decimal]
LossRecorder = Callable[[Route, ImageRequest, BackendError], Awaitable[None]]
HedgeLossRecorder = Callable[[Route, ImageRequest, BackendError | None], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
"""Books an attempt cancelled because another route answered first: with the vendor's own word
on what it bills when the cancellation carried one (a job left running), else at its estimate."""


@dataclass(slots=True)
class RoutedResult:
    result: BackendResult
    route: Route
    attempts: list[RouteAttempt] = field(default_factory=list)
    backend_seconds: float = 0.0
    """Time spent waiting on backends (the rest of the request is the gateway's own)."""
    hedged_to: Route | None = None
    """The route a hedge started on, if one did."""
    in_flight: set[str] = field(default_factory=set)
    """Routes (keys) whose backend call is under way now."""
    losers: set[str] = field(default_factory=set)
    """Routes (keys) being cancelled because another route answered first."""
    booked: set[str] = field(default_factory=set)
    """Cancelled attempts whose vendor said what they cost (booked when they ended)."""


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, BackendError) and error.retryable


class RouteAttempts:
    """Tries one route for the router and records every attempt."""

    def __init__(self, health: RouteHealth, stats: RouteStats, retry: RetryConfig, *,
                 on_loss: LossRecorder | None = None, on_hedge_loss: HedgeLossRecorder | None = None,
                 max_image_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.health = health
        self.stats = stats
        self.retry = retry
        self.on_loss = on_loss
        self.on_hedge_loss = on_hedge_loss
        self.max_image_pixels = max_image_pixels
        """The settings' ``outbound.max_image_pixels``: past it a served image is not decoded."""
        self.sleep: Sleep = asyncio.sleep
        """How a wait between retries is waited: tests swap in one that also records each wait,
        so that which waits were taken is asserted exactly rather than read off a wall clock."""

    async def serve_on(
        self, route: Route, status: RouteStatus, request: ImageRequest, deadline: Deadline, routed: RoutedResult,
        has_fallback: bool,
    ) -> BackendResult:
        """Serve ``request`` on ``route`` (``status``: what its breaker admitted it with), retrying
        within the deadline. A half-open route's trial ends with the answer: the breaker closes
        on a success and re-opens on a failure that counts against the route; an answer that says
        nothing about the route (``judges_route``) gives the trial back, so a run of requests the
        vendor refuses (400/409/422), a 429 or a filtered image never leaves it stuck half-open."""
        # The first attempt runs without tenacity, whose setup and bookkeeping cost more than
        # the rest of a served request's routing; tenacity takes over only after a retryable
        # failure, handed that failure as its own first attempt, so the retries, waits and stop
        # are exactly as if it had run the first attempt itself.
        try:
            return await self._attempt(route, status, request, deadline, routed)
        except BaseException as error:
            if not _is_retryable(error):
                await self._trial_over(route, status, error)
                raise
            first_failure: BaseException | None = error
        longest_wait = self.retry.max_retry_after_s
        if has_fallback:
            longest_wait = min(longest_wait, self.retry.max_wait_with_fallback_s)
        retrying = AsyncRetrying(
            stop=StopWhenOutOfTime(route.max_attempts, deadline, longest_wait),
            wait=RetryAfterOrBackoff(self.retry),
            sleep=self.sleep,
            retry=retry_if_exception(_is_retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if first_failure is not None:
                        failure, first_failure = first_failure, None
                        raise failure
                    return await self._attempt(route, status, request, deadline, routed)
        except BaseException as error:
            await self._trial_over(route, status, error)
            raise
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _trial_over(self, route: Route, status: RouteStatus, error: BaseException) -> None:
        """The route was given up with ``error``: a half-open trial it says nothing about is given back."""
        if isinstance(error, BackendError) and not judges_route(error):
            await self.health.release_trial(route, status)

    async def _attempt(
        self, route: Route, status: RouteStatus, request: ImageRequest, deadline: Deadline, routed: RoutedResult
    ) -> BackendResult:
        started = time.monotonic()
        try:
            routed.in_flight.add(route.key)
            try:
                async with asyncio.timeout(deadline.remaining()):
                    result = await route.backend.generate(request, deadline)
            except TimeoutError as exc:
                left_behind = backend_error_behind(exc)  # e.g. a billed job it had to abandon
                if left_behind is not None:
                    raise left_behind from exc
                raise VendorTimeout(f"{route.vendor} ran past the request's deadline") from exc
            except asyncio.CancelledError as cancelled:
                await asyncio.shield(self._book_cancelled(route, request, routed, cancelled))
                raise
            finally:
                routed.in_flight.discard(route.key)
            if len(result.images) < request.n:
                raise VendorProtocolError(
                    f"{route.vendor} answered {len(result.images)} image(s) for n={request.n}")
            await reject_blank_images(result, request, route.vendor, max_pixels=self.max_image_pixels)
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

    async def _book_cancelled(self, route: Route, request: ImageRequest, routed: RoutedResult,
                              cancelled: asyncio.CancelledError) -> None:
        """A cancelled attempt that carries its vendor's verdict (a job cancelled, or left running
        and billed) is booked by it. One that carries none was cut off while its call was under
        way: a hedge's loser is left to the race (``Router``); any other (the client hung up, its
        job was cancelled) is a create whose answer nobody will read, the gateway's possible loss
        at the route's estimate (no vendor promises an aborted call is free; the client, who gets
        no image, pays nothing)."""
        left_behind = backend_error_behind(cancelled)
        if left_behind is None:
            if route.key in routed.losers:
                return
            left_behind = AmbiguousCreate(f"{route.vendor}: the request was cancelled while its call was under way; "
                                          "the vendor may bill it")
        routed.booked.add(route.key)
        if not left_behind.billed:
            return
        if route.key in routed.losers and self.on_hedge_loss is not None:
            await self.on_hedge_loss(route, request, left_behind)
        elif self.on_loss is not None:
            await self.on_loss(route, request, left_behind)

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
        if error.failover and not isinstance(error, ContentFiltered | VendorRejectedRequest):  # the route's fault
            await self.stats.record(route, seconds, ok=False)
        if isinstance(error, VendorAuthError):
            await self.health.quarantine(route, f"{error.outcome} {error.status or ''}: {error.message[:120]}",
                                         brief=isinstance(error, VendorOutOfCredit))
        elif counts_against_route(error):
            await self.health.record_failure(route, f"{error.outcome}: {error.message[:120]}", status)
        if error.billed and self.on_loss is not None:
            await self.on_loss(route, request, error)


def counts_against_route(error: BackendError) -> bool:
    """Whether the route's breaker counts ``error`` as the route failing: a retryable failure
    other than a 429 (a busy vendor is not a broken one), or a create whose answer was lost."""
    return (error.retryable and not isinstance(error, VendorRateLimited)) or isinstance(error, AmbiguousCreate)


def judges_route(error: BackendError) -> bool:
    """Whether ``error`` says anything about the route's health: it counts against the route, or
    the vendor refused our key (its account is quarantined). A vendor's refusal of this request
    (400/409/422), a 429, a filtered image or billed output we cannot use does not."""
    return counts_against_route(error) or isinstance(error, VendorAuthError)


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
