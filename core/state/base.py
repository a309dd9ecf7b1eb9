"""The state interface. Memory and Redis implementations pass one contract test suite.

Kept to the few primitives the gateway needs (images with a TTL, breaker counters, ledgers,
idempotency keys), each atomic on its own so that replicas sharing Redis agree.
"""

from __future__ import annotations

from typing import Protocol


class StateStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Set ``key`` only if it does not exist; True when this call set it."""
        ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl`` is applied when the key is created."""
        ...

    async def incr_within(self, key: str, amount: int, limit: int, ttl: float | None = None) -> int | None:
        """Add ``amount`` only if the result stays <= ``limit``; the new value, or None if refused.

        The budget check and the reservation in one atomic step, so concurrent requests on one
        key can never overspend it. ``ttl`` is applied when this call creates the key (a rate
        window that ends on its own).
        """
        ...

    async def acquire_lease(self, key: str, holder: str, limit: int, ttl: float) -> int | None:
        """Hold one of at most ``limit`` leases on ``key`` for ``holder``: the number held now,
        or None when all are taken. A lease ends at ``release_lease`` or after ``ttl`` seconds,
        so leases of a replica that died free themselves."""
        ...

    async def release_lease(self, key: str, holder: str) -> None: ...

    async def hincr(self, key: str, field: str, amount: int, ttl: float | None = None) -> int:
        """Add ``amount`` to ``field`` of the hash ``key``; ``ttl`` is applied when the hash is
        created (counts over a time window that expire by themselves)."""
        ...

    async def hdel(self, key: str, field: str) -> None:
        """Remove ``field`` from the hash ``key``; the hash goes with its last field."""
        ...

    async def hgetall(self, key: str) -> dict[str, int]: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left before ``key`` expires, None when it has no TTL or does not exist."""
        ...

    async def aclose(self) -> None: ...
