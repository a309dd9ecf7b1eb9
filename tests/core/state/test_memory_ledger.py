"""What only the memory ledger does: how long it remembers closed holds, and what that costs."""

from __future__ import annotations

import pytest

from core.state import memory_ledger
from core.state.ledger_store import CLOSED_TTL_S, Settled
from core.state.memory_ledger import CLOSED_PRUNE_AT, MemoryLedgerStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(memory_ledger.time, "monotonic", fake)
    return fake


async def test_holds_closed_past_the_prune_size_stay_closed(clock: Clock) -> None:
    store = MemoryLedgerStore()
    for index in range(CLOSED_PRUNE_AT + 50):
        assert await store.settle("key", f"hold-{index}", 1, limit=None) is Settled.CHARGED
    assert await store.settle("key", "hold-0", 1, limit=None) is Settled.ALREADY_SETTLED
    assert await store.settle("key", f"hold-{CLOSED_PRUNE_AT + 49}", 1, limit=None) is Settled.ALREADY_SETTLED


async def test_closed_holds_are_pruned_once_per_doubling_not_on_every_close(clock: Clock) -> None:
    """Markers live a week: pruning at a fixed size would rebuild the whole set on every close."""
    store = MemoryLedgerStore()
    rebuilds, previous = 0, store._closed
    for index in range(3 * CLOSED_PRUNE_AT):
        await store.release("key", f"hold-{index}")
        if store._closed is not previous:
            rebuilds, previous = rebuilds + 1, store._closed
    assert rebuilds == 2  # at 10,000 and at 20,000 (nothing had expired, so the next is at 40,000)


async def test_expired_markers_are_forgotten_when_pruned(clock: Clock) -> None:
    store = MemoryLedgerStore()
    for index in range(CLOSED_PRUNE_AT):
        await store.release("key", f"old-{index}")
    clock.now += CLOSED_TTL_S + 1
    await store.release("key", "new")
    assert len(store._closed) == 1
    assert await store.release("key", "old-0")  # forgotten: closing it again is not refused
