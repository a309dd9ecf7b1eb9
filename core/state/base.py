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

    async def incr_within(self, key: str, amount: int, limit: int) -> int | None:
        """Add ``amount`` only if the result stays <= ``limit``; the new value, or None if refused.

        The budget check and the reservation in one atomic step, so concurrent requests on one
        key can never overspend it.
        """
        ...

    async def hincr(self, key: str, field: str, amount: int) -> int: ...

    async def hgetall(self, key: str) -> dict[str, int]: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left before ``key`` expires, None when it has no TTL or does not exist."""
        ...

    async def aclose(self) -> None: ...
