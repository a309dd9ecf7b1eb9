"""One image request, start to finish: bill it, route it, honour the format, store or inline
the images, and say how it was served.

Front doors (generations, edits) build an ``ImageRequest`` and hand it here; they never talk to
backends themselves.

Money and failures: credits are held before each route is tried (with a lease of the deadline
plus ``reservation_grace_s``), released when no image is delivered, and settled once the images
are ready to hand over. A settle the state store did not confirm is retried (it is idempotent
and fenced) until the deadline; if it never is, the client gets 503 ``state_unavailable`` and no
image, and the request is voided (``UnconfirmedCharges``): a try that landed although its answer
was lost is taken back, and the vendor's cost is the gateway's loss. Nothing that can fail comes
after a confirmed settle, so a charged request is always answered with its images.

An async job's run keeps its charge durably before the settle is sent (``keep_charge``), so a
run again after it was lost can report or take back that charge; when another run of the job kept
one for the same hold first, that charge is what is settled (the one charge that can land on the
hold, ``proxy.jobs.book``), and what this run's vendor cost is the gateway's loss. A run again on
a hold an earlier run settled (``Reservation.settled_before``) sends no settle at all: it is paid
for, and what its own vendor cost is the gateway's loss.

A job run whose settle failed, however (the ledger refused it, ``ReservationExpired``: the
charge kept for the job's hold is more than the hold holds now, after its lease ran out and another
run held it again for less, and the budget has no room for the rest; or it went unconfirmed, or
the run was cancelled mid-settle), is neither voided nor released: the job's end settles its
money. Another run of the job may be alive beside this one, settling the same kept charge on the
same hold. Closing the hold would have that settle find it closed without a charge; and a void
made after that settle landed would take back the charge of a run that delivered its images. So
the hold stays as it is until the job's end (an unconfirmed one is still counted and logged as a
request's is, ``UnconfirmedCharges.left_to_job``): a job that fails has its kept charge taken back
(``proxy.jobs.uncharge``: refunded if a settle landed, the hold closed if not, the vendor's cost
booked once as the gateway's loss); one that succeeds (the other run's settle landed, or a run
again found the hold settled) is charged once. A process killed meanwhile leaves the job
unacknowledged: its next delivery finds the end, or runs it again on the same hold.

A settle that finds the hold closed without a charge (``ReservationReleased``: another run of
the job failed before its settle and released it, or the job's end took its charge back, or its
cancel released the hold before the charge was kept) charges nothing, so the run fails and
delivers no image, and what the vendor cost is the gateway's loss: booked as the hold's
undelivered charge (``Billing.book_undelivered``), once with the end's take-back of the same
charge. A run whose charge could not be kept sends no settle and fails uncharged, its hold
released, and books its vendor cost as a loss too (``_kept``). A synchronous request holds a
hold of its own, released or voided only after its last settle try: it never finds its hold so.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from backends.base import GeneratedImage
from core.create_key import create_key_for_client_key
from core.deadline import Deadline
from core.errors import KeptChargeUnreadable, ReservationExpired, ReservationReleased, RouteAttempt, StateUnavailable
from core.image_header import DEFAULT_MAX_PIXELS
from core.request import ImageRequest
from core.state.base import StateStore
from pricing.keys import KeyRecord
from pricing.ledger import Reservation
from proxy.best_effort import quietly
from proxy.billing import Billing, Charge, PendingCharge
from proxy.claims import CLAIM_GRACE_S, Claim, claim, refuse_held
from proxy.hedging import HedgeAllowance
from proxy.images.convert import to_format
from proxy.images.links import ImageLinks
from proxy.images.store import ImageStore
from proxy.metrics import GATEWAY_OVERHEAD_SECONDS, IMAGES, labelled
from proxy.rate_limits import Admission, KeyRateLimiter
from proxy.replays import REPLAY_TTL_S, replay_record, replayed
from proxy.request_hold import RequestHold
from proxy.routing.choice import DEFAULT_CHOICE, RoutingChoice
from proxy.routing.router import RoutedResult, Router
from proxy.settings import HedgingConfig
from proxy.unconfirmed_charges import UnconfirmedCharges

log = logging.getLogger(__name__)

UPSTREAM_COST_HEADERS = ("x-boltgate-upstream-cost-usd", "x-boltgate-vendor-reported-cost-usd")
"""What the vendor cost: the gateway's margin, kept from clients unless the settings say otherwise."""
SETTLE_RETRY_S = 0.2
"""Pause between two tries of a settle the state store did not confirm."""

KeepCharge = Callable[[PendingCharge], Awaitable[PendingCharge]]
"""Keeps a request's charge durably before its settle is sent (an async job's run, ``JobBook``)
and answers the charge to settle: that one, or one another run of the job kept for the same hold
before (then that one is settled, and this run's vendor cost is the gateway's loss)."""


@dataclass(slots=True)
class ImagesResponse:
    """The OpenAI-shaped body and the headers that say how the request was served."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    images: list[GeneratedImage] = field(default_factory=list)
    """The images themselves (not serialised): what an idempotent replay stores by reference."""


class Gateway:
    def __init__(self, router: Router, images: ImageStore, state: StateStore, billing: Billing, *,
                 deadline_s: float, public_base_url: str | None = None, links: ImageLinks | None = None,
                 expose_upstream_cost: bool = True, reservation_grace_s: float = 30.0,
                 rate_limiter: KeyRateLimiter | None = None, hedging: HedgingConfig | None = None,
                 budgets: StateStore | None = None, max_image_pixels: int = DEFAULT_MAX_PIXELS,
                 unconfirmed: UnconfirmedCharges | None = None) -> None:
        """``links`` says which base URL a request's images get (``public_base_url`` wins);
        without ``expose_upstream_cost`` what the vendor cost is kept from the client."""
        self.router = router
        self.images = images
        self.state = state
        self.billing = billing
        self.deadline_s = deadline_s
        self.links = links or ImageLinks(public_base_url, ())
        self.public_base_url = self.links.public_base_url
        self.expose_upstream_cost = expose_upstream_cost
        self.reservation_grace_s = reservation_grace_s
        self.rate_limiter = rate_limiter
        self.hedging = hedging or HedgingConfig()
        self.budgets = budgets or state
        """Where the keys' daily hedge budgets are counted (durable: they are money)."""
        self.max_image_pixels = max_image_pixels
        """The settings' ``outbound.max_image_pixels``: past it an image is not decoded to convert."""
        self.unconfirmed = unconfirmed or UnconfirmedCharges(billing)
        """Voids the requests whose settle went unconfirmed (close it before the stores)."""

    async def admit(self, key: KeyRecord, images: int, *, in_flight: bool = True) -> Admission:
        """Count a request for ``images`` against ``key``'s rate limits, or raise
        ``KeyRateLimited`` (429); release the admission when the request ends. ``in_flight``
        False: not as a request in flight (a job's submit; its run takes a ``run_slot``)."""
        if self.rate_limiter is None:
            return Admission()
        return await self.rate_limiter.admit(key, images, in_flight=in_flight)

    async def run_slot(self, key: KeyRecord) -> Admission | None:
        """A slot of ``key``'s ``concurrent_requests`` for a job's run, or None while the key has
        that many requests in flight (the job waits); release it when the run ends."""
        if self.rate_limiter is None:
            return Admission()
        return await self.rate_limiter.slot(key)

    async def generate(self, request: ImageRequest, *, base_url: str, key: KeyRecord,
                       idempotency_key: str | None = None, routing: RoutingChoice = DEFAULT_CHOICE,
                       reservation: Reservation | None = None, admitted: bool = False,
                       keep_charge: KeepCharge | None = None) -> ImagesResponse:
        """Serve ``request`` for ``key``, within the key's rate limits (429 beyond them) and what
        it may ask of the router (``routing``: a policy, or one vendor; 403 beyond that).
        ``reservation`` is a hold made earlier (an async job's, placed at submit) that routing
        raises as needed and that is settled or released here; ``admitted``: the request was
        counted against the rate limits already (an async job, at submit), so it is not again;
        ``keep_charge`` is awaited with the charge before its settle is sent, and the charge it
        answers is the one settled (a failure there sends none, and the request fails uncharged)."""
        routing.check_allowed(key.routing)
        if self.rate_limiter is None or admitted:
            return await self._generate_or_replay(request, base_url, key, idempotency_key, routing, reservation,
                                                  keep_charge)
        admission = await self.rate_limiter.admit(key, request.n)
        try:
            served = await self._generate_or_replay(request, base_url, key, idempotency_key, routing, reservation,
                                                    keep_charge)
        finally:  # a charged answer must reach the client; a lease left behind ends with its TTL
            await quietly(admission.release(), "release a concurrency lease")
        served.headers.update(admission.headers)
        return served

    def _generate_or_replay(self, request: ImageRequest, base_url: str, key: KeyRecord,
                            idempotency_key: str | None, routing: RoutingChoice,
                            reservation: Reservation | None,
                            keep_charge: KeepCharge | None = None) -> Awaitable[ImagesResponse]:
        """Not a coroutine itself: a request without an Idempotency-Key awaits ``_generate``
        with one frame less for every resumption of its await chain to pass through."""
        if idempotency_key is None:
            return self._generate(request, base_url, key, routing, reservation, keep_charge=keep_charge)
        return self._generate_once(request, base_url, key, idempotency_key, routing, reservation, keep_charge)

    async def _generate_once(self, request: ImageRequest, base_url: str, key: KeyRecord, idempotency_key: str,
                             routing: RoutingChoice, reservation: Reservation | None,
                             keep_charge: KeepCharge | None = None) -> ImagesResponse:
        """Replay the answer remembered for ``idempotency_key``, or generate and remember it.

        The claim on the key lasts as long as the replay (``proxy.claims``) and is given up only
        when nothing was charged, so a charged request whose answer is not remembered (the store
        down then, or the process killed) leaves the key refusing a second generation."""
        create_key = create_key_for_client_key(key.key_id, idempotency_key)
        ledger = self.billing.ledger
        fingerprint = request_fingerprint(request)
        if (replay := await self._replay(key, idempotency_key, fingerprint)) is not None:
            return replay
        held = await claim(ledger, key.key_id, idempotency_key, Claim(fingerprint))
        if held is not None:
            if (replay := await self._replay(key, idempotency_key, fingerprint)) is not None:
                return replay  # answered between the first look and the claim
            refuse_held(held, fingerprint, self.deadline_s + CLAIM_GRACE_S)
        try:
            served = await self._generate(request, base_url, key, routing, reservation, create_key, keep_charge)
        except BaseException:  # nothing was charged (a charge is the last thing that can fail)
            await quietly(ledger.release_idempotency(key.key_id, idempotency_key), "release an idempotency claim")
            raise
        # The request is charged: it must reach the client even if its replay cannot be stored
        # (then the claim, kept, answers a retry that the answer is unavailable).
        await quietly(self._remember(served, key, idempotency_key, fingerprint), "remember an idempotent response")
        return served

    async def _replay(self, key: KeyRecord, idempotency_key: str, fingerprint: str) -> ImagesResponse | None:
        """The answer remembered under the key, served again uncharged; None when there is none."""
        raw = await self.billing.ledger.recall_response(key.key_id, idempotency_key)
        if raw is None:
            return None
        body, headers = await replayed(raw, fingerprint, self.images)
        return ImagesResponse(body=body, headers=headers)

    async def _remember(self, served: ImagesResponse, key: KeyRecord, idempotency_key: str, fingerprint: str) -> None:
        """The replay record: base64 images by reference to the image store, not copied."""
        record = await replay_record(served.body, served.headers, fingerprint, served.images, self.images)
        await self.billing.ledger.remember_response(key.key_id, idempotency_key, record, ttl=REPLAY_TTL_S)

    async def _generate(self, request: ImageRequest, base_url: str, key: KeyRecord,
                        routing: RoutingChoice, reservation: Reservation | None = None,
                        create_key: str | None = None, keep_charge: KeepCharge | None = None) -> ImagesResponse:
        started = time.monotonic()
        deadline = Deadline(self.deadline_s)
        plan = await self.router.candidates(request, routing)
        if not plan[0]:
            reason = (f"The route {routing.describe_pin()} you asked for cannot serve this request now"
                      if routing.pinned else "No route can serve this request")
            raise await self.router.unavailable(request, reason, plan[1])
        hold = RequestHold(self.billing, key, request, deadline, grace_s=self.reservation_grace_s,
                           reservation=reservation)
        hedge = None
        if routing.hedge if routing.hedge is not None else self.hedging.enabled:
            hedge = HedgeAllowance(self.billing, self.budgets, self.hedging, key, request, hold)
        pending: PendingCharge | None = None
        try:
            routed = await self.router.generate(request, deadline, plan, admit=hold.admit, hedge=hedge,
                                               create_key=create_key)
            images = routed.result.images[: request.n]
            if request.output_compression is not None or any(image.format != request.output_format
                                                             for image in images):
                images = list(await asyncio.gather(*(to_format(image, request.output_format, request.output_compression,
                                                               max_pixels=self.max_image_pixels)
                                                     for image in images)))
            data = await self._render(images, request, self.public_base_url or base_url.rstrip("/"))
            assert hold.reservation is not None, "a route was tried, so it was admitted"
            bill = self.billing.final_bill(routed.route, request, run_seconds=routed.result.run_seconds,
                                           images=len(images))
            this_run = self.billing.pending_charge(hold.reservation, routed.route, bill, routed.result)
            if hold.reservation.settled_before:  # paid for by the lost run: nothing to settle, or to void
                await quietly(self.billing.book_served_again(this_run), _booking(this_run))
                charge = this_run.charge
            else:
                if keep_charge is not None:
                    this_run = await self._kept(keep_charge, this_run)
                pending = this_run
                charge = await self._settle(pending, deadline)
        except BaseException as error:
            if pending is None and hold.reservation is not None:  # nothing was sent to settle
                await quietly(self.billing.ledger.release(hold.reservation), "release a reservation")
            elif pending is not None and keep_charge is None:  # a settle was sent and not confirmed
                self.unconfirmed.void(pending)
            elif pending is not None and not isinstance(error, (ReservationExpired, ReservationReleased)):
                self.unconfirmed.left_to_job(pending)  # a job run's: counted and logged, not voided
            elif pending is not None and isinstance(error, ReservationReleased):  # it can never land now
                await quietly(self.billing.book_undelivered(pending), _booking(pending))
            # A job run's failed settle (refused, unconfirmed) is left to the job's end (see above).
            raise
        vendor = routed.route.vendor
        labelled(IMAGES, vendor).inc(len(images))
        GATEWAY_OVERHEAD_SECONDS.observe(max(0.0, time.monotonic() - started - routed.backend_seconds))
        billing, headers = charge.billing(), {**served_headers(routed, request), **charge.headers()}
        if not self.expose_upstream_cost:
            billing.pop("upstream_cost_usd", None)
            for name in UPSTREAM_COST_HEADERS:
                headers.pop(name, None)
        return ImagesResponse(
            body={
                "created": int(time.time()),
                "data": data,
                "output_format": request.output_format,
                "size": request.size,
                **seed_of(routed, request),
                "billing": billing,
            },
            headers=headers,
            images=images,
        )

    async def _kept(self, keep_charge: KeepCharge, this_run: PendingCharge) -> PendingCharge:
        """The charge a job's run settles, kept durably first (``keep_charge``): its own, or the
        one another run of the job kept for the hold before it (then what this run's vendor cost
        is the gateway's loss, once per call: each is one more generation billed). When the keep
        fails, nothing is settled and the run fails uncharged, so its vendor cost is a loss too:
        of its own when the charge kept is certainly another run's (``KeptChargeUnreadable``);
        otherwise booked as the hold's undelivered charge (``Billing.book_undelivered``), since
        the keep may have landed with its answer lost, and then the job's end, taking that same
        charge back, must not book it again."""
        try:
            kept = await keep_charge(this_run)
        except KeptChargeUnreadable:
            await quietly(self.billing.book_served_again(this_run), _booking(this_run))
            raise
        except BaseException:
            await quietly(self.billing.book_undelivered(this_run), _booking(this_run))
            raise
        if kept is not this_run:  # another run of the job kept its charge for the hold first
            await quietly(self.billing.book_served_again(this_run), _booking(this_run))
        return kept

    async def _settle(self, pending: PendingCharge, deadline: Deadline) -> Charge:
        """Settle, retrying while the state store does not confirm and the deadline allows.

        Each try is idempotent (a try that ran although its answer was lost makes the next one
        answer "already settled") and fenced (a try the store runs after its client gave up does
        nothing). When no try is confirmed by the deadline, one may still have landed: the
        caller voids the request (``UnconfirmedCharges``) as it answers 503.
        """
        while True:
            try:
                return await self.billing.settle(pending)
            except StateUnavailable as error:
                if isinstance(error, (ReservationExpired, ReservationReleased)):
                    raise  # the store answered: nothing was written, and a retry would write nothing
                if deadline.remaining() <= SETTLE_RETRY_S:
                    raise StateUnavailable("The state store did not confirm this request's charge before its "
                                           "deadline: no image is delivered, and a charge that was recorded "
                                           "is taken back once the store answers") from error
                log.warning("the state store did not confirm a charge; retrying until the deadline")
                await asyncio.sleep(SETTLE_RETRY_S)

    async def _render(
        self, images: list[GeneratedImage], request: ImageRequest, base_url: str
    ) -> list[dict[str, Any]]:
        if request.response_format == "b64_json":
            return [{"b64_json": image.b64_ascii, "revised_prompt": request.prompt} for image in images]
        names = [await self.images.put(image.data, image.format) for image in images]
        return [{"url": f"{base_url}/v1/images/files/{name}", "revised_prompt": request.prompt}
                for name in names]


def _booking(pending: PendingCharge) -> str:
    """What booking ``pending``'s vendor cost as a loss is, for the log line when it fails."""
    settlement = pending.settlement
    return (f"book the vendor cost of request {settlement.reservation.reservation_id} ({settlement.vendor}, "
            f"{pending.charge.upstream_usd} USD) as the gateway's loss")


def served_headers(routed: RoutedResult, request: ImageRequest) -> dict[str, str]:
    headers = {
        "x-boltgate-backend": routed.route.vendor,
        "x-boltgate-region": routed.route.region,
        "x-boltgate-attempts": str(len(routed.attempts)),
    }
    failed = [failed_attempt(attempt) for attempt in routed.attempts if attempt.outcome not in SERVED_OR_RACED]
    if failed:  # what failed before the route that served, e.g. "runflow/us unavailable 503, runflow/eu timeout"
        headers["x-boltgate-failed-attempts"] = ", ".join(failed)
    if routed.hedged_to is not None:  # a second route raced the first: which one it was
        headers["x-boltgate-hedged-to"] = f"{routed.hedged_to.vendor}/{routed.hedged_to.region}"
    if seed_of(routed, request):
        headers["x-boltgate-seed"] = str(request.seed)
    result = routed.result
    if result.vendor_cost_usd is not None:  # what the vendor says it billed, for reconciliation
        headers["x-boltgate-vendor-reported-cost-usd"] = str(result.vendor_cost_usd)
    if result.run_seconds is not None:
        headers["x-boltgate-run-seconds"] = f"{result.run_seconds:.3f}"
    if result.vendor_request_id is not None:
        headers["x-boltgate-vendor-request-id"] = result.vendor_request_id
    return headers


SERVED_OR_RACED = frozenset({"ok", "cancelled"})
"""Outcomes that are not failures: the attempt that served, and a hedge's loser (cancelled)."""


def failed_attempt(attempt: RouteAttempt) -> str:
    status = "" if attempt.status is None else f" {attempt.status}"
    return f"{attempt.backend}/{attempt.region} {attempt.outcome}{status}"


def seed_of(routed: RoutedResult, request: ImageRequest) -> dict[str, int]:
    """The seed the image was made with, when the backend that served it takes one (a vendor
    without a seed field drew its own, which it does not tell)."""
    return {"seed": request.seed} if routed.route.backend.capabilities.seed else {}


def request_fingerprint(request: ImageRequest) -> str:
    """What the client asked for (a seed the gateway drew is not part of it)."""
    asked = request.model_dump_json(include=request.model_fields_set)
    return hashlib.sha256(asked.encode()).hexdigest()

