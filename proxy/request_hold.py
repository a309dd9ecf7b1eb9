"""One request's credit hold (a single ledger reservation), raised as the router needs it.

The client pays only for the route that serves it, so before each route is tried the hold is
raised to the most that route could charge (failover to a pricier route tops it up; a route the
key's budget cannot cover is skipped, 402 when none can). While a hedge races two routes, the
hold covers both at once: a hedge never starts on credit the key lacks, and whichever route
wins, its charge is within the hold. One settle charges the winner and ends the hold; a request
that delivers nothing releases it. A job's run again on a reservation an earlier run settled
(``Reservation.settled_before``) holds nothing and races nothing: it is paid for already.
"""

from __future__ import annotations

from core.deadline import Deadline
from core.errors import InsufficientCredits
from core.request import ImageRequest
from pricing.keys import KeyRecord
from pricing.ledger import Reservation
from proxy.billing import Billing
from proxy.routing.route import Route


class RequestHold:
    def __init__(self, billing: Billing, key: KeyRecord, request: ImageRequest, deadline: Deadline, *,
                 grace_s: float, reservation: Reservation | None = None) -> None:
        """``reservation``: a hold placed earlier for this request (an async job's, at submit),
        raised from here on instead of a new one."""
        self.billing = billing
        self.key = key
        self.request = request
        self.deadline = deadline
        self.grace_s = grace_s
        """The lease outlives the deadline by this much (a settle retried at the very end)."""
        self.reservation = reservation

    def _lease_s(self) -> float:
        return self.deadline.remaining() + self.grace_s

    async def admit(self, route: Route) -> None:
        """Hold what ``route`` could charge before it is tried (``InsufficientCredits`` skips it)."""
        if self.reservation is not None and self.reservation.settled_before:
            return
        self.reservation = await self.billing.hold_for(self.reservation, self.key, route, self.request,
                                                       lease_s=self._lease_s())

    async def cover_race(self, primary: Route, hedge: Route) -> bool:
        """Raise the hold to what ``primary`` and ``hedge`` could charge together; False, with
        the hold unchanged, when the key's budget cannot cover both."""
        if self.reservation is None or self.reservation.settled_before:
            return False  # nothing was admitted, so nothing is racing; or paid for, with no room to race
        both = self.billing.most_billable(primary, self.request) + self.billing.most_billable(hedge, self.request)
        try:
            await self.billing.ledger.hold(self.reservation, both, lease_s=self._lease_s())
        except InsufficientCredits:
            return False
        return True
