"""The credit ledger: reserve before a request, settle or release after, and report usage.

Money lives in a ``LedgerStore`` (integer micro-USD; see ``core.state.ledger_store``), per
client key id (``KeyRecord.key_id``, never the raw key)::

    spent                                  what the key was charged, for good
    holds                                  one per request in flight, each with a lease
    table key:<key>:day_usd / day_images          charges per UTC date
    table key:<key>:vendor_usd / vendor_images    charges per vendor
    table losses:vendor_usd / vendor_attempts / day_usd   billed failures, never charged on
    table losses:vendor_overruns           charges capped at their reservation (run time past the cap)
    charge log                             one entry per charge (``pricing.charge_log``)

Every step is one atomic, idempotent store operation: placing or raising a hold checks the
budget and holds in one step (so any number of concurrent requests on one key cannot overspend
it); settling closes the hold and writes the charge with its tallies in one step (an
interruption cannot half-charge, a retry cannot charge twice). A charge is never more than
what was held: the caller prices the request within its reservation (``proxy.billing``), and
the ledger caps it there too; the store writes a charge above what the hold holds *now* (its
lease ran out, or a job's run again held it for less) only if the budget has room for it.
A settle is built once (``Settlement``) and every try writes the same; when no try was
confirmed, ``void`` makes sure the request ends up uncharged, taking back exactly what a try
that did land wrote. A hold carries a lease (the request's deadline plus a grace): if the
process dies or loses its store mid-request, the hold stops counting when the lease ends.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from core.errors import InsufficientCredits, ReservationExpired, ReservationReleased
from core.state.base import StateStore
from core.state.ledger_store import HoldState, LedgerStore, Settled, Tally, Voided
from pricing.charge_log import ChargePage, ChargeRecord
from pricing.idempotency import IdempotencyStore
from pricing.money import credits_to_usd, format_usd, from_micro_usd, to_credits, to_micro_usd
from pricing.quote import Quote


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Reservation:
    """Credits held for one request until it is settled or released (raised on failover)."""

    api_key: str
    reservation_id: str
    limit: int | None
    """The key's budget in micro-USD; None without a budget."""
    budget_credits: Decimal | None = None
    micro_usd: int = 0
    """What is held now."""
    settled_before: bool = False
    """Settled by an earlier run of the same job whose answer was lost (its process stopped):
    the run again is served on that charge, neither held nor charged a second time."""

    @property
    def amount_usd(self) -> Decimal:
        return from_micro_usd(self.micro_usd)


@dataclass(frozen=True, slots=True)
class Settlement:
    """One reservation's charge as the store is asked to write it. Built once, so every try of a
    settle writes the same, and a void takes back exactly what a try that landed wrote (the
    UTC day of its tallies included, even when the void comes after midnight)."""

    reservation: Reservation
    micro_usd: int
    """The charge: never more than the reservation held."""
    vendor: str
    tallies: tuple[Tally, ...]
    record: ChargeRecord | None


class Ledger:
    """Budgets, charges and losses per client key; also the key's Idempotency-Key records."""

    def __init__(
        self,
        book: LedgerStore,
        store: StateStore,
        credit_usd: Decimal = Decimal("0.01"),
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._book = book
        self._credit_usd = credit_usd
        self._clock = clock
        self.idempotency = IdempotencyStore(store)

    @staticmethod
    def _table(api_key: str, name: str) -> str:
        return f"key:{api_key}:{name}"

    async def claim_idempotency(self, api_key: str, idempotency_key: str, ttl: float, value: bytes = b"1") -> bool:
        """True when this request may run; False when the key was claimed before (409)."""
        return await self.idempotency.claim(api_key, idempotency_key, ttl, value)

    async def held_idempotency_claim(self, api_key: str, idempotency_key: str) -> tuple[bytes, float | None] | None:
        """What a claim keeps and its TTL's seconds left; None when the key is not claimed."""
        return await self.idempotency.held_claim(api_key, idempotency_key)

    async def release_idempotency(self, api_key: str, idempotency_key: str) -> None:
        """Drop the claim after a failure that charged nothing, so the client can retry with the key."""
        await self.idempotency.release_claim(api_key, idempotency_key)

    async def remember_response(self, api_key: str, idempotency_key: str, payload: bytes, ttl: float) -> None:
        await self.idempotency.remember_response(api_key, idempotency_key, payload, ttl)

    async def recall_response(self, api_key: str, idempotency_key: str) -> bytes | None:
        """The stored response to replay, uncharged; None when there is none."""
        return await self.idempotency.recall_response(api_key, idempotency_key)

    def _limit(self, budget_credits: Decimal | None) -> int | None:
        return None if budget_credits is None else to_micro_usd(credits_to_usd(budget_credits, self._credit_usd))

    async def reserve(self, api_key: str, amount_usd: Decimal, budget_credits: Decimal | None, *,
                      lease_s: float) -> Reservation:
        """Hold ``amount_usd`` against the key's budget for ``lease_s``, or raise
        ``InsufficientCredits`` (402). Without a budget the hold always succeeds and is tracked."""
        reservation = Reservation(api_key, secrets.token_hex(12), self._limit(budget_credits), budget_credits)
        await self.hold(reservation, amount_usd, lease_s=lease_s)
        return reservation

    async def hold(self, reservation: Reservation, amount_usd: Decimal, *, lease_s: float) -> None:
        """Raise the reservation to ``amount_usd`` (a pricier route is next) and renew its lease;
        ``InsufficientCredits`` when the budget cannot cover it (the reservation is unchanged)."""
        if amount_usd < 0:
            raise ValueError("amount_usd must be >= 0")
        micros = max(reservation.micro_usd, to_micro_usd(amount_usd))
        if not await self._book.hold(reservation.api_key, reservation.reservation_id, micros,
                                     limit=reservation.limit, lease_s=lease_s):
            raise await self._refusal(reservation, micros)
        reservation.micro_usd = micros

    async def renew(self, reservation: Reservation, *, lease_s: float) -> bool:
        """Renew the hold's lease for ``lease_s`` from now, its amount as it is; False, with
        nothing changed, when the hold is closed (it is never held again) or its lease ran out
        and the budget no longer covers it. Unlike ``hold``, a refusal is an answer, not a 402:
        the caller (a job's submit, once the job is queued) has nothing to refuse any more."""
        return await self._book.hold(reservation.api_key, reservation.reservation_id, reservation.micro_usd,
                                     limit=reservation.limit, lease_s=lease_s)

    async def _refusal(self, reservation: Reservation, micros: int) -> InsufficientCredits:
        balance = await self._book.balance(reservation.api_key)
        limit = reservation.limit or 0
        own = reservation.micro_usd  # what this request holds already counts as its own
        remaining = to_credits(from_micro_usd(max(0, limit - balance.spent - balance.held + own)), self._credit_usd)
        needed = to_credits(from_micro_usd(micros), self._credit_usd)
        return InsufficientCredits(
            f"Insufficient credits: this request needs {needed:f} credits and {remaining:f} of this "
            f"key's budget of {reservation.budget_credits:f} credits remain."
        )

    def settlement(self, reservation: Reservation, quote: Quote, *, overrun_usd: Decimal = Decimal(0),
                   record: ChargeRecord | None = None) -> Settlement:
        """What settling ``reservation`` at ``quote`` writes: ``quote.client_usd`` (never more than
        is held) recorded by day and vendor, ``overrun_usd`` (vendor cost the client is not billed
        for) as a gateway loss, and ``record`` for the charge log."""
        charge = min(to_micro_usd(quote.client_usd), reservation.micro_usd)
        key, day = reservation.api_key, self.today()
        tallies = [
            Tally(self._table(key, "day_usd"), day, charge),
            Tally(self._table(key, "day_images"), day, quote.images),
            Tally(self._table(key, "vendor_usd"), quote.vendor, charge),
            Tally(self._table(key, "vendor_images"), quote.vendor, quote.images),
        ]
        if overrun_usd > 0:
            overrun = to_micro_usd(overrun_usd)
            tallies += [Tally("losses:vendor_usd", quote.vendor, overrun), Tally("losses:day_usd", day, overrun),
                        Tally("losses:vendor_overruns", quote.vendor, 1)]
        return Settlement(reservation, charge, quote.vendor, tuple(tallies), record)

    async def settle(self, reservation: Reservation, quote: Quote, *, overrun_usd: Decimal = Decimal(0),
                     record: ChargeRecord | None = None) -> None:
        """Charge ``quote.client_usd`` in place of the reservation, in one atomic step
        (``settlement`` says what is written). Settling again changes nothing.

        Raises ``ReservationExpired`` when the charge is more than the store holds for the
        reservation now (its lease ran out, or a job's run again held it for less) and the budget
        has no room for it (nothing is written), and ``ReservationReleased`` when the reservation
        was closed without a charge before (another run of the job gave it back): settling a
        reservation settled before is a retry that changes nothing, and the charge stands.
        """
        await self.charge(self.settlement(reservation, quote, overrun_usd=overrun_usd, record=record))

    async def charge(self, settlement: Settlement) -> None:
        """Write ``settlement`` (once, however often it is called); ``ReservationExpired`` and
        ``ReservationReleased`` as ``settle``."""
        reservation = settlement.reservation
        entry = b"" if settlement.record is None else settlement.record.to_entry()
        outcome = await self._book.settle(reservation.api_key, reservation.reservation_id, settlement.micro_usd,
                                          limit=reservation.limit, tallies=settlement.tallies, entry=entry)
        if outcome is Settled.REFUSED:
            raise ReservationExpired("This request's reservation expired before it could be charged; "
                                     "nothing was charged")
        if outcome is Settled.ALREADY_RELEASED:
            raise ReservationReleased("This request's reservation was given back by another run of the same job "
                                      "before it could be charged; nothing was charged")

    async def void(self, settlement: Settlement) -> Voided:
        """Make sure ``settlement``'s request ends up uncharged: its settle was sent but never
        confirmed, and the client was answered with an error. If the settle landed, its charge
        and tallies are taken back and the charge log gets the refund (the same request id, the
        amounts negated, no vendor cost: the vendor's line stands on the charge's own entry);
        if not, the hold is released for good. Voiding again changes nothing."""
        reservation = settlement.reservation
        taken_back = tuple(Tally(t.table, t.field, -t.amount) for t in settlement.tallies)
        record = settlement.record
        refund = b"" if record is None else replace(
            record, images=-record.images, run_seconds=None, catalog_cost_usd=Decimal(0),
            vendor_reported_cost_usd=None, client_usd=-from_micro_usd(settlement.micro_usd)).to_entry()
        return await self._book.void(reservation.api_key, reservation.reservation_id, settlement.micro_usd,
                                     tallies=taken_back, entry=refund)

    async def release(self, reservation: Reservation) -> None:
        """Give the whole reservation back (no image was delivered)."""
        await self._book.release(reservation.api_key, reservation.reservation_id)

    async def hold_state(self, reservation: Reservation) -> HoldState:
        """Whether ``reservation`` was settled, released (or voided), or is not closed."""
        return await self._book.hold_state(reservation.api_key, reservation.reservation_id)

    async def charges(self, since: datetime, *, limit: int, after: str | None = None) -> ChargePage:
        """Up to ``limit`` charges of the log from ``since`` on (and after the position ``after``),
        oldest first, and whether more follow: one more is read to know (``InvalidRequest``
        naming ``after`` for a position the store never gave out)."""
        logged = await self._book.charges(since.timestamp(), limit + 1, after=after)
        page = logged[:limit]
        return ChargePage([ChargeRecord.from_entry(charge.entry, charge.at) for charge in page],
                          has_more=len(logged) > limit, next_after=page[-1].position if page else after)

    async def charge_pages(self, since: datetime, *, page_size: int = 10_000) -> AsyncIterator[list[ChargeRecord]]:
        """The whole charge log from ``since`` on, oldest first, one page (one read of the store)
        at a time: a caller that is done with a page before asking for the next holds one page,
        however long the log (an empty log is one empty page)."""
        after = None
        while True:
            page = await self.charges(since, limit=page_size, after=after)
            yield page.records
            if not page.has_more:
                return
            after = page.next_after

    async def probe(self) -> None:
        """Read the store once: ``StateUnavailable`` when it does not answer (readiness)."""
        await self._book.balance("readyz")

    def today(self) -> str:
        """The UTC date, as the ``day_usd`` tables name it."""
        return self._clock().astimezone(UTC).date().isoformat()

    async def record_loss(self, vendor: str, amount_usd: Decimal, event_id: str | None = None, *,
                          day: str | None = None) -> bool:
        """A vendor billed work the client does not pay for (an attempt that delivered nothing,
        run time above the reservation): the gateway's cost, tallied under ``day`` (today when
        None; a loss booked late, ``proxy.owed_losses``, keeps the day it was made). Counted
        once per ``event_id`` (for ``CLOSED_TTL_S``); False when that event was counted before."""
        micros = to_micro_usd(amount_usd)
        return await self._book.count(event_id or secrets.token_hex(12), [
            Tally("losses:vendor_usd", vendor, micros),
            Tally("losses:vendor_attempts", vendor, 1),
            Tally("losses:day_usd", day or self.today(), micros),
        ])

    async def first_seen(self, event_id: str) -> bool:
        """Whether ``event_id`` is seen here for the first time (durably, for ``CLOSED_TTL_S``, in
        every process): what counts an event that the code may meet more than once (a job seen
        again by its cancel, its run's end and its next delivery) at most once."""
        return await self._book.count(event_id, [])

    async def usage(self, api_key: str, budget_credits: Decimal | None = None) -> dict[str, object]:
        """Spend by UTC date and by vendor, the total, what is reserved, and what remains.

        USD and credits are strings (exact), image counts integers; ``remaining_credits`` is None
        without a budget and never below zero.
        """
        day_usd = await self._book.table(self._table(api_key, "day_usd"))
        day_images = await self._book.table(self._table(api_key, "day_images"))
        vendor_usd = await self._book.table(self._table(api_key, "vendor_usd"))
        vendor_images = await self._book.table(self._table(api_key, "vendor_images"))
        balance = await self._book.balance(api_key)
        remaining = None
        limit = self._limit(budget_credits)
        if limit is not None:
            left = max(0, limit - balance.spent - balance.held)
            remaining = f"{to_credits(from_micro_usd(left), self._credit_usd):f}"
        return {
            "spent_usd": format_usd(from_micro_usd(balance.spent)),
            "spent_credits": self._credits(balance.spent),
            "images": sum(day_images.values()),
            "reserved_usd": format_usd(from_micro_usd(balance.held)),
            "budget_credits": None if budget_credits is None else f"{budget_credits:f}",
            "remaining_credits": remaining,
            "by_day": self._rows(day_usd, day_images),
            "by_vendor": self._rows(vendor_usd, vendor_images),
        }

    def _credits(self, micros: int) -> str:
        return f"{to_credits(from_micro_usd(micros), self._credit_usd):f}"

    def _rows(self, usd: dict[str, int], images: dict[str, int]) -> dict[str, dict[str, object]]:
        return {
            name: {
                "usd": format_usd(from_micro_usd(micros)),
                "credits": self._credits(micros),
                "images": images.get(name, 0),
            }
            for name, micros in sorted(usd.items())
        }
