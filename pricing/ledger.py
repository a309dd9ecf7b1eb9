"""The credit ledger: reserve before a request, settle or release after, and report usage.

State (integer micro-USD, so every change is one atomic integer add in the store)::

    ledger:key:<key>:committed          reserved + spent, the number checked against the budget
    ledger:key:<key>:day_usd / day_images          charges per UTC date
    ledger:key:<key>:vendor_usd / vendor_images    charges per vendor
    ledger:losses:vendor_usd / vendor_attempts / day_usd   billed failures, never charged on
    ledger:reservation:<id>             a closed reservation (settling twice is a no-op)

``<key>`` is the client key's id (``KeyRecord.key_id``), never the raw key. The budget check
and the reservation are one ``incr_within``, so any number of concurrent requests on one key
cannot overspend it. A final bill above its reservation (a vendor ran longer than estimated)
is still charged, since the image was delivered; the next reservation then sees less room.
A reservation never settled nor released (the process died mid-request) stays counted.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from core.errors import InsufficientCredits
from core.state.base import StateStore
from pricing.idempotency import IdempotencyStore
from pricing.money import credits_to_usd, format_usd, from_micro_usd, to_credits, to_micro_usd
from pricing.quote import Quote

CLOSED_TTL_S = 7 * 24 * 3600.0
"""How long a settled or released reservation is remembered, so closing it twice is a no-op."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits held for one request until it is settled or released."""

    api_key: str
    micro_usd: int
    reservation_id: str

    @property
    def amount_usd(self) -> Decimal:
        return from_micro_usd(self.micro_usd)


class Ledger:
    """Budgets, charges and losses per client key; also the key's Idempotency-Key records."""

    def __init__(
        self,
        store: StateStore,
        credit_usd: Decimal = Decimal("0.01"),
        *,
        clock: Callable[[], datetime] = utc_now,
        prefix: str = "ledger",
    ) -> None:
        self._store = store
        self._credit_usd = credit_usd
        self._clock = clock
        self._ledger = prefix
        self.idempotency = IdempotencyStore(store)

    def _key(self, api_key: str, *parts: str) -> str:
        return ":".join((self._ledger, "key", api_key, *parts))

    async def claim_idempotency(self, api_key: str, idempotency_key: str, ttl: float) -> bool:
        """True when this request may run; False while another with the same key runs (409)."""
        return await self.idempotency.claim(api_key, idempotency_key, ttl)

    async def release_idempotency(self, api_key: str, idempotency_key: str) -> None:
        """Drop the claim after a failure so the client can retry with the same key."""
        await self.idempotency.release_claim(api_key, idempotency_key)

    async def remember_response(self, api_key: str, idempotency_key: str, payload: bytes, ttl: float) -> None:
        await self.idempotency.remember_response(api_key, idempotency_key, payload, ttl)

    async def recall_response(self, api_key: str, idempotency_key: str) -> bytes | None:
        """The stored response to replay, uncharged; None when there is none."""
        return await self.idempotency.recall_response(api_key, idempotency_key)

    async def reserve(self, api_key: str, amount_usd: Decimal, budget_credits: Decimal | None) -> Reservation:
        """Hold ``amount_usd`` against the key's budget, or raise ``InsufficientCredits`` (402).

        Without a budget the reservation always succeeds and is still tracked.
        """
        if amount_usd < 0:
            raise ValueError("amount_usd must be >= 0")
        micros = to_micro_usd(amount_usd)
        committed = self._key(api_key, "committed")
        if budget_credits is None:
            await self._store.incr(committed, micros)
        else:
            limit = to_micro_usd(credits_to_usd(budget_credits, self._credit_usd))
            if await self._store.incr_within(committed, micros, limit) is None:
                raise await self._refusal(api_key, micros, budget_credits, limit)
        return Reservation(api_key, micros, secrets.token_hex(12))

    async def _refusal(self, api_key: str, micros: int, budget: Decimal, limit: int) -> InsufficientCredits:
        used = int(await self._store.get(self._key(api_key, "committed")) or b"0")
        remaining = to_credits(from_micro_usd(max(0, limit - used)), self._credit_usd)
        needed = to_credits(from_micro_usd(micros), self._credit_usd)
        return InsufficientCredits(
            f"Insufficient credits: this request needs {needed:f} credits and {remaining:f} of this "
            f"key's budget of {budget:f} credits remain."
        )

    async def _close(self, reservation: Reservation) -> bool:
        """True the first time ``reservation`` is closed; settling or releasing twice does nothing."""
        marker = f"{self._ledger}:reservation:{reservation.reservation_id}"
        return await self._store.set_if_absent(marker, b"closed", CLOSED_TTL_S)

    async def settle(self, reservation: Reservation, quote: Quote) -> None:
        """Charge ``quote.client_usd`` in place of the reservation and record it by day and vendor."""
        if not await self._close(reservation):
            return
        charge = to_micro_usd(quote.client_usd)
        key, day = reservation.api_key, self._clock().astimezone(UTC).date().isoformat()
        await self._store.hincr(self._key(key, "day_usd"), day, charge)
        await self._store.hincr(self._key(key, "day_images"), day, quote.images)
        await self._store.hincr(self._key(key, "vendor_usd"), quote.vendor, charge)
        await self._store.hincr(self._key(key, "vendor_images"), quote.vendor, quote.images)
        if charge != reservation.micro_usd:
            await self._store.incr(self._key(key, "committed"), charge - reservation.micro_usd)

    async def release(self, reservation: Reservation) -> None:
        """Give the whole reservation back (no image was delivered)."""
        if await self._close(reservation):
            await self._store.incr(self._key(reservation.api_key, "committed"), -reservation.micro_usd)

    async def record_loss(self, vendor: str, amount_usd: Decimal) -> None:
        """A vendor billed an attempt that delivered nothing: the gateway's cost, not the client's."""
        micros = to_micro_usd(amount_usd)
        day = self._clock().astimezone(UTC).date().isoformat()
        await self._store.hincr(f"{self._ledger}:losses:vendor_usd", vendor, micros)
        await self._store.hincr(f"{self._ledger}:losses:vendor_attempts", vendor, 1)
        await self._store.hincr(f"{self._ledger}:losses:day_usd", day, micros)

    async def usage(self, api_key: str, budget_credits: Decimal | None = None) -> dict[str, object]:
        """Spend by UTC date and by vendor, the total, what is reserved, and what remains.

        USD and credits are strings (exact), image counts integers; ``remaining_credits`` is None
        without a budget and never below zero.
        """
        day_usd = await self._store.hgetall(self._key(api_key, "day_usd"))
        day_images = await self._store.hgetall(self._key(api_key, "day_images"))
        vendor_usd = await self._store.hgetall(self._key(api_key, "vendor_usd"))
        vendor_images = await self._store.hgetall(self._key(api_key, "vendor_images"))
        committed = int(await self._store.get(self._key(api_key, "committed")) or b"0")
        spent = sum(day_usd.values())
        remaining = None
        if budget_credits is not None:
            budget = to_micro_usd(credits_to_usd(budget_credits, self._credit_usd))
            remaining = f"{to_credits(from_micro_usd(max(0, budget - committed)), self._credit_usd):f}"
        return {
            "spent_usd": format_usd(from_micro_usd(spent)),
            "spent_credits": self._credits(spent),
            "images": sum(day_images.values()),
            "reserved_usd": format_usd(from_micro_usd(max(0, committed - spent))),
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
