"""State behind two interfaces, each in memory, in a SQLite file and in Redis, each with one
contract suite: ``StateStore`` (keys, breakers, images, idempotency records) and
``LedgerStore`` (the money: holds with leases, charges written once, the charge log)."""

from core.state.base import StateStore

__all__ = ["StateStore"]
