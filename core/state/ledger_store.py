"""The money interface: holds with a lease, charges written once, counters added once.

``pricing.ledger`` keeps budgets with these operations; memory, SQLite and Redis implement
them and pass one contract suite (``tests/core/state/test_ledger_store_contract.py``). Each
operation is one atomic step in its store (one Python call without an ``await`` inside, one
SQLite transaction, one Lua script), so an interruption can never leave half of it written,
and each is idempotent by its id, so a retry after a timeout can never apply it twice.

An account's money, in integer micro-USD::

    spent        what was charged, for good
    holds        hold id -> amount, each with an expiry (its lease)

    spent + the live holds <= the account's limit, whenever a hold is placed or raised
                                                  or a settle charges more than its hold holds

A hold whose lease ran out (its process was killed, its store connection was lost) is no
longer counted: the money it held comes back on its own. So a settle may find its hold gone, or
held again for less (an async job's run again, served by a cheaper route, held the job's hold
after the lease of a run that was in fact still alive ran out): the part of its charge that the
live hold does not cover is money no hold kept for it, and is written only if the limit has room
for it, checked in the same atomic step. Without that check, settling that run's charge would
pass the limit by the difference whenever the key spent the room the lease gave back meanwhile.
The check is at the settle, not a rule that a hold id is never held again for less: an expired
hold's amount is dropped by every store (reaped), so no later hold could know it, and the settle
is the one step that sees both the charge and what is held for it now, whatever made that less.
It costs the common path nothing: a charge within its live hold reads no balance.

``settle`` and ``release`` close a hold once; closing it again changes nothing. A settle of a
closed hold says how it was closed, because its caller acts on that: closed by a settle
(``ALREADY_SETTLED``: a retry of its own settle that landed, or another run of the same async job
settled the same charge) the charge stands and the images are paid for; closed without a charge
(``ALREADY_RELEASED``: released, or voided, by another run of the job that gave the hold back)
nothing is charged, and a caller that took that for "charged already" would hand over free images.

``void`` is for a settle whose answer never came back (the store timed out): it makes sure the
hold ends up uncharged, taking the charge back if the settle did land, so a request answered with
an error is never charged whatever happened to the answer.

Each charge may carry an entry for the charge log (what an operator reconciles a vendor's
invoice against), appended in the same atomic step and kept ``CHARGE_LOG_RETENTION_S``. The log
is read in pages: each entry comes with its *position*, and the next page starts after the last
one's. A position is two numbers, ``<major>-<minor>`` (``POSITION_PATTERN``), which each store
gives its own meaning (memory: a counter; SQLite: the time's bits and the rowid; Redis: the stream
id, whose form this is), and every store reads any position of that form as a place in its log,
so whatever the OpenAPI document allows is a page, not an error. A position orders entries
written at the same instant too, so paging never skips or repeats one however many share a
timestamp.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from core.errors import InvalidRequest

CLOSED_TTL_S = 7 * 24 * 3600.0
"""How long a closed hold id (or a counted event id) is remembered, so closing it twice is a no-op."""
CHARGE_LOG_RETENTION_S = 35 * 24 * 3600.0
"""How long charge-log entries are kept by default: a monthly invoice plus a few days."""


@dataclass(frozen=True, slots=True)
class LoggedCharge:
    """One entry of the charge log and when the store wrote it (Unix seconds, the store's clock)."""

    at: float
    entry: bytes
    position: str
    """Where the entry is in the log: pass it as ``after`` to read the entries that follow it."""


@dataclass(frozen=True, slots=True)
class Tally:
    """One counter to add to in the same atomic step as a charge: ``table[field] += amount``."""

    table: str
    field: str
    amount: int


@dataclass(frozen=True, slots=True)
class Balance:
    spent: int
    """Charged, in micro-USD."""
    held: int
    """Held by live (unexpired) holds, in micro-USD."""


class Settled(enum.Enum):
    CHARGED = "charged"
    """This call closed the hold and wrote the charge and its tallies."""
    ALREADY_SETTLED = "already_settled"
    """A settle closed the hold before and its charge stands: nothing changed."""
    ALREADY_RELEASED = "already_released"
    """The hold was closed without a charge standing (released, or voided: its charge taken back
    or never landed): nothing changed, and nothing is charged."""
    REFUSED = "refused"
    """The charge is more than the hold holds live (its lease had run out, or it was held again
    for less) and the limit has no room for it: nothing changed."""


class Voided(enum.Enum):
    REFUNDED = "refunded"
    """The hold had been settled: its charge was taken back, the tallies added, the entry logged."""
    RELEASED = "released"
    """The hold was still open: it is closed now, its amount given back, and no settle can charge it."""
    UNCHANGED = "unchanged"
    """The hold was released or voided before: nothing changed."""


class HoldState(enum.Enum):
    OPEN = "open"
    """Not closed: held (live or expired), or never placed."""
    SETTLED = "settled"
    """Closed by a settle: its charge stands."""
    RELEASED = "released"
    """Closed without a charge: released, or voided."""


POSITION_PATTERN = r"^[0-9]{1,19}-[0-9]{1,19}$"
"""A charge-log position: two numbers below 10**19, so each fits 64 bits (a Redis stream id)."""
_POSITION = re.compile(POSITION_PATTERN)


def read_position(after: str) -> tuple[int, int]:
    """The two numbers of a position; ``InvalidRequest`` naming ``after`` for anything else."""
    if not _POSITION.fullmatch(after):
        raise InvalidRequest(f"'after' must be a position the charge log gave out (next_after), not {after!r}",
                             param="after")
    major, _, minor = after.partition("-")
    return int(major), int(minor)


class LedgerStore(Protocol):
    async def hold(self, account: str, hold_id: str, amount: int, *, limit: int | None, lease_s: float) -> bool:
        """Hold ``amount`` for ``hold_id`` until ``lease_s`` from now; False if it does not fit.

        A new hold, or an existing one raised to ``amount`` (never lowered), fits when
        ``spent + live holds`` stays within ``limit`` (None: no limit). Expired holds are dropped
        first. Calling again with the same amount only renews the lease. A closed hold id is
        refused (False).
        """
        ...

    async def settle(
        self, account: str, hold_id: str, charge: int, *, limit: int | None, tallies: Sequence[Tally] = (),
        entry: bytes = b"",
    ) -> Settled:
        """Close the hold, add ``charge`` to ``spent``, add every tally and append ``entry`` (when
        not empty) to the charge log, all in one step.

        A charge within what the hold holds live is written whatever the limit (it was checked
        when the hold was placed). One above it (the hold's lease ran out, or it was held again
        for less) is written only if ``spent + the other live holds + charge`` fits ``limit``;
        otherwise nothing changes (``REFUSED``: the hold stays as it was, open).
        """
        ...

    async def void(
        self, account: str, hold_id: str, refund: int, *, tallies: Sequence[Tally] = (), entry: bytes = b"",
    ) -> Voided:
        """Make sure ``hold_id`` ends up uncharged, in one step: when a settle closed it, take
        ``refund`` (what that settle charged) back from ``spent``, add every tally (the caller
        passes the settle's negated) and append ``entry``; when it is still open, release it.
        Voiding again changes nothing. Not fenced: the caller voids only once every settle try
        it sent has timed out past its fence, so no settle of this hold can land after it.
        """
        ...

    async def hold_state(self, account: str, hold_id: str) -> HoldState:
        """Whether ``hold_id`` was settled, released, or is not closed (a read: what a job run
        again after its process stopped finds its earlier run did)."""
        ...

    async def charges(self, since: float, limit: int = 10_000, *, after: str | None = None) -> list[LoggedCharge]:
        """At most ``limit`` charge-log entries written at or after ``since`` (Unix seconds) and,
        with ``after`` (an entry's ``position``), after that entry; oldest first.

        Raises ``InvalidRequest`` (``param="after"``) for an ``after`` not of a position's form.
        """
        ...

    async def release(self, account: str, hold_id: str) -> bool:
        """Close the hold and give its amount back; False when it was already closed."""
        ...

    async def balance(self, account: str) -> Balance:
        """What the account spent and what its live holds keep."""
        ...

    async def count(self, event_id: str, tallies: Sequence[Tally]) -> bool:
        """Add every tally once per ``event_id`` (a retry of the same event adds nothing)."""
        ...

    async def table(self, name: str) -> dict[str, int]:
        """Every field of a tally table; empty when nothing was added to it."""
        ...

    async def aclose(self) -> None: ...
