"""The embedded stores' clock, moved forward: a test sees what TTLs and leases leave behind a
minute or a day later without waiting for it.

The memory and SQLite state stores and ledgers read time through ``time.monotonic`` and
``time.time`` (TTLs, leases, when a charge was made); this swaps the ``time`` those modules see
for one that runs ``advance``d seconds ahead. Everything else (asyncio, the gateway's deadlines)
keeps the real clock.

``freeze_ledger_time`` stops the ledgers' wall clock instead: every charge is logged at one
instant, so a test can page through charges that share a timestamp.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import core.state.memory
import core.state.memory_ledger
import core.state.sqlite
import core.state.sqlite_ledger


class StateClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ahead_s = 0.0
        ahead = SimpleNamespace(monotonic=lambda: time.monotonic() + self.ahead_s,
                                time=lambda: time.time() + self.ahead_s)
        for module in (core.state.memory, core.state.memory_ledger, core.state.sqlite, core.state.sqlite_ledger):
            monkeypatch.setattr(module, "time", ahead)

    def advance(self, seconds: float) -> None:
        self.ahead_s += seconds


class FrozenClock:
    """A ``time`` module whose wall clock stands still (``monotonic`` runs on: leases and
    timeouts still pass)."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()


def freeze_ledger_time(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """The memory and SQLite ledgers log every charge at the same instant (Redis reads its own
    clock; its stream ids tell apart the charges of one millisecond)."""
    clock = FrozenClock()
    for module in (core.state.memory_ledger, core.state.sqlite_ledger):
        monkeypatch.setattr(module, "time", clock)
    return clock
