"""In-memory ledger store: for tests and ephemeral use (everything is gone when the process stops).

Every method runs to the end without an ``await`` inside, so within one event loop each is
atomic, the equivalent of the Redis store's Lua scripts.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.state.ledger_store import (
    CHARGE_LOG_RETENTION_S,
    CLOSED_TTL_S,
    Balance,
    HoldState,
    LoggedCharge,
    Settled,
    Tally,
    Voided,
    read_position,
)


@dataclass(slots=True)
class _Account:
    spent: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)
    """hold id -> (amount, expires at on the monotonic clock)."""

    def drop_expired(self, now: float) -> None:
        for hold_id in [h for h, (_, expires) in self.holds.items() if expires <= now]:
            del self.holds[hold_id]

    def held(self) -> int:
        return sum(amount for amount, _ in self.holds.values())


CLOSED_PRUNE_AT = 10_000
"""Closed markers kept before the expired ones are first looked for."""


def _counted(logged: LoggedCharge) -> int:
    return read_position(logged.position)[0]


class MemoryLedgerStore:
    def __init__(self, *, charge_log_retention_s: float = CHARGE_LOG_RETENTION_S) -> None:
        self._retention_s = charge_log_retention_s
        self._log: list[LoggedCharge] = []
        self._logged = 0
        """Entries ever logged: the next one's position is this, counted on."""
        self._accounts: dict[str, _Account] = {}
        self._closed: dict[str, float] = {}
        """Closed hold ids and counted event ids -> when they may be forgotten."""
        self._settled: dict[str, float] = {}
        """The closed hold ids that a settle closed (what ``void`` takes back) -> when forgotten."""
        self._prune_at = CLOSED_PRUNE_AT
        self._tables: dict[str, dict[str, int]] = {}

    def _account(self, account: str) -> _Account:
        found = self._accounts.get(account)
        if found is None:
            found = self._accounts[account] = _Account()
        found.drop_expired(time.monotonic())
        return found

    def _is_closed(self, marker: str) -> bool:
        forget_at = self._closed.get(marker)
        return forget_at is not None and forget_at > time.monotonic()

    def _is_settled(self, hold_id: str) -> bool:
        forget_at = self._settled.get(hold_id)
        return forget_at is not None and forget_at > time.monotonic()

    def _close(self, marker: str) -> None:
        """Remember ``marker`` for ``CLOSED_TTL_S``. Expired markers are forgotten once the set
        has doubled since it was last pruned: markers live a week, so pruning at a fixed size
        kept nearly all of them and rebuilt the whole set on every close from then on (past
        10,000 requests, most of a served request's CPU)."""
        now = time.monotonic()
        if len(self._closed) >= self._prune_at:
            self._closed = {m: t for m, t in self._closed.items() if t > now}
            self._settled = {m: t for m, t in self._settled.items() if t > now}
            self._prune_at = max(CLOSED_PRUNE_AT, 2 * len(self._closed))
        self._closed[marker] = now + CLOSED_TTL_S

    def _add(self, tallies: Sequence[Tally]) -> None:
        for tally in tallies:
            table = self._tables.setdefault(tally.table, {})
            table[tally.field] = table.get(tally.field, 0) + tally.amount

    async def hold(self, account: str, hold_id: str, amount: int, *, limit: int | None, lease_s: float) -> bool:
        state = self._account(account)
        if self._is_closed(hold_id):
            return False
        current = state.holds.get(hold_id, (0, 0.0))[0]
        wanted = max(current, amount)
        if limit is not None and wanted > current and state.spent + state.held() - current + wanted > limit:
            return False
        state.holds[hold_id] = (wanted, time.monotonic() + lease_s)
        return True

    async def settle(
        self, account: str, hold_id: str, charge: int, *, limit: int | None, tallies: Sequence[Tally] = (),
        entry: bytes = b"",
    ) -> Settled:
        state = self._account(account)
        if self._is_closed(hold_id):
            return Settled.ALREADY_SETTLED if self._is_settled(hold_id) else Settled.ALREADY_RELEASED
        covered = state.holds.get(hold_id, (0, 0.0))[0]
        if limit is not None and charge > covered and state.spent + state.held() - covered + charge > limit:
            return Settled.REFUSED
        state.holds.pop(hold_id, None)
        self._close(hold_id)
        self._settled[hold_id] = self._closed[hold_id]
        state.spent += charge
        self._add(tallies)
        self._log_entry(entry)
        return Settled.CHARGED

    def _log_entry(self, entry: bytes) -> None:
        if entry:
            now = time.time()
            if self._log and self._log[0].at < now - self._retention_s:
                self._log = [logged for logged in self._log if logged.at >= now - self._retention_s]
            self._logged += 1
            self._log.append(LoggedCharge(now, entry, f"{self._logged}-0"))

    async def void(
        self, account: str, hold_id: str, refund: int, *, tallies: Sequence[Tally] = (), entry: bytes = b"",
    ) -> Voided:
        state = self._account(account)
        if self._is_settled(hold_id):
            del self._settled[hold_id]  # closed still: a second void finds it released
            state.spent -= refund
            self._add(tallies)
            self._log_entry(entry)
            return Voided.REFUNDED
        if self._is_closed(hold_id):
            return Voided.UNCHANGED
        state.holds.pop(hold_id, None)
        self._close(hold_id)
        return Voided.RELEASED

    async def hold_state(self, account: str, hold_id: str) -> HoldState:
        if self._is_settled(hold_id):
            return HoldState.SETTLED
        return HoldState.RELEASED if self._is_closed(hold_id) else HoldState.OPEN

    async def charges(self, since: float, limit: int = 10_000, *, after: str | None = None) -> list[LoggedCharge]:
        # A position is "<count>-0": the log is in the order written, so in order of position.
        first = 0 if after is None else bisect.bisect_right(self._log, read_position(after)[0], key=_counted)
        return [logged for logged in self._log[first:] if logged.at >= since][:limit]

    async def release(self, account: str, hold_id: str) -> bool:
        state = self._account(account)
        if self._is_closed(hold_id):
            return False
        state.holds.pop(hold_id, None)
        self._close(hold_id)
        return True

    async def balance(self, account: str) -> Balance:
        state = self._account(account)
        return Balance(state.spent, state.held())

    async def count(self, event_id: str, tallies: Sequence[Tally]) -> bool:
        if self._is_closed(event_id):
            return False
        self._close(event_id)
        self._add(tallies)
        return True

    async def table(self, name: str) -> dict[str, int]:
        return dict(self._tables.get(name, {}))

    async def aclose(self) -> None:
        self._accounts.clear()
        self._closed.clear()
        self._settled.clear()
        self._tables.clear()
        self._log.clear()
