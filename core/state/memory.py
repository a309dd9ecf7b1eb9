"""In-memory state: the embedded default for one process (no Redis)."""

from __future__ import annotations

import time


class MemoryStateStore:
    """A dict with expiry. Every operation is synchronous inside one event loop, hence atomic."""

    def __init__(self) -> None:
        self._values: dict[str, bytes | int | dict[str, int]] = {}
        self._expiry: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}

    def _live(self, key: str) -> bool:
        expires = self._expiry.get(key)
        if expires is not None and expires <= time.monotonic():
            self._values.pop(key, None)
            self._expiry.pop(key, None)
        return key in self._values

    def _expire_in(self, key: str, ttl: float | None) -> None:
        if ttl is None:
            self._expiry.pop(key, None)
        else:
            self._expiry[key] = time.monotonic() + ttl

    async def get(self, key: str) -> bytes | None:
        if not self._live(key):
            return None
        value = self._values[key]
        if isinstance(value, int):
            return str(value).encode()
        if isinstance(value, dict):
            raise TypeError(f"{key} holds a hash")
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._values[key] = value
        self._expire_in(key, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if self._live(key):
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._expiry.pop(key, None)

    def _int(self, key: str) -> int:
        if not self._live(key):
            return 0
        value = self._values[key]
        if isinstance(value, dict):
            raise TypeError(f"{key} holds a hash")
        return int(value)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        created = not self._live(key)
        value = self._int(key) + amount
        self._values[key] = value
        if created and ttl is not None:
            self._expire_in(key, ttl)
        return value

    async def incr_within(self, key: str, amount: int, limit: int, ttl: float | None = None) -> int | None:
        created = not self._live(key)
        value = self._int(key) + amount
        if value > limit:
            return None
        self._values[key] = value
        if created and ttl is not None:
            self._expire_in(key, ttl)
        return value

    async def acquire_lease(self, key: str, holder: str, limit: int, ttl: float) -> int | None:
        now = time.monotonic()
        leases = {name: ends for name, ends in self._leases.get(key, {}).items() if ends > now}
        if holder not in leases and len(leases) >= limit:
            self._leases[key] = leases
            return None
        leases[holder] = now + ttl
        self._leases[key] = leases
        return len(leases)

    async def release_lease(self, key: str, holder: str) -> None:
        self._leases.get(key, {}).pop(holder, None)

    async def hincr(self, key: str, field: str, amount: int, ttl: float | None = None) -> int:
        if not self._live(key):
            self._values[key] = {}
            if ttl is not None:
                self._expire_in(key, ttl)
        table = self._values[key]
        if not isinstance(table, dict):
            raise TypeError(f"{key} does not hold a hash")
        table[field] = table.get(field, 0) + amount
        return table[field]

    async def hgetall(self, key: str) -> dict[str, int]:
        if not self._live(key):
            return {}
        table = self._values[key]
        if not isinstance(table, dict):
            raise TypeError(f"{key} does not hold a hash")
        return dict(table)

    async def ttl(self, key: str) -> float | None:
        if not self._live(key) or key not in self._expiry:
            return None
        return max(0.0, self._expiry[key] - time.monotonic())

    async def aclose(self) -> None:
        self._values.clear()
        self._expiry.clear()
        self._leases.clear()
