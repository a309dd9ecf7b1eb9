"""What only the memory ledger store does: closed markers are forgotten in passes that come
further apart as the live markers grow, so they stay bounded without a copy on every close."""

from __future__ import annotations

import time

import pytest

from core.state import memory_ledger
from core.state.ledger_store import CLOSED_TTL_S, Tally
from core.state.memory_ledger import MemoryLedgerStore


class Clock:
    """Stands in for the ``time`` module in ``core.state.memory_ledger``."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


async def test_expired_markers_are_forgotten_once_the_markers_pass_the_threshold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(memory_ledger, "time", clock)
    monkeypatch.setattr(memory_ledger, "FORGET_MARKERS_PAST", 4)
    book = MemoryLedgerStore()
    for index in range(5):
        assert await book.count(f"old{index}", [Tally("t", "f", 1)])
    clock.now += CLOSED_TTL_S + 1
    assert await book.count("new0", [Tally("t", "f", 1)])  # 5 markers > 4: the expired five go
    assert len(book._closed) == 1
    for index in range(1, 8):
        assert await book.count(f"new{index}", [Tally("t", "f", 1)])
    assert len(book._closed) == 8  # the pass at 5 markers found them all live, and set the next at over 10
    assert not await book.count("new0", [Tally("t", "f", 1)])
    assert await book.table("t") == {"f": 13}
