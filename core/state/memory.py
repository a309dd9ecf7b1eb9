"""In-memory state: the embedded default for one process (no Redis).

Memory is bounded two ways. Expired keys are forgotten *actively*: an expiry heap is swept on
every write and, once any key has a TTL, by a background task every ``sweep_interval_s``, so a key nobody reads again
still leaves on time (reading it was once the only way out, and ``make run`` grew without bound).
And values under the ``evictable_prefixes`` (served images) share a byte budget: past
``max_evictable_bytes`` the least recently used are dropped first, as Redis does with
``maxmemory-policy allkeys-lru``. Money (ledgers, keys, idempotency records) is never evicted.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import OrderedDict
from collections.abc import Callable

Value = bytes | int | dict[str, int]


class MemoryStateStore:
    """A dict with expiry. Every operation is synchronous inside one event loop, hence atomic."""

    def __init__(self, *, max_evictable_bytes: int | None = None, evictable_prefixes: tuple[str, ...] = ("image:",),
                 sweep_interval_s: float = 1.0, on_evict: Callable[[str], None] | None = None) -> None:
        self._values: dict[str, Value] = {}
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._evictable: OrderedDict[str, int] = OrderedDict()
        """Evictable keys, least recently used first, with their sizes."""
        self._evictable_bytes = 0
        self._max_evictable_bytes = max_evictable_bytes
        self._evictable_prefixes = evictable_prefixes
        self._sweep_interval_s = sweep_interval_s
        self._on_evict = on_evict
        self._sweeper: asyncio.Task[None] | None = None
        self._leases: dict[str, dict[str, float]] = {}

    @property
    def evictable_bytes(self) -> int:
        """Bytes held under the evictable prefixes (what the byte budget counts)."""
        return self._evictable_bytes

    @property
    def key_count(self) -> int:
        """Keys held now, live or not yet swept. Not ``__len__``: an empty store must stay truthy,
        since callers write ``store or default``."""
        return len(self._values)

    def sweep(self) -> int:
        """Forget every key whose TTL has passed; how many were forgotten."""
        now = time.monotonic()
        forgotten = 0
        while self._heap and self._heap[0][0] <= now:
            expires, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires:  # else the entry is stale: the TTL changed since
                self._remove(key)
                forgotten += 1
        return forgotten

    def _start_sweeping(self) -> None:
        if self._sweeper is None:
            with contextlib.suppress(RuntimeError):  # no running loop: writes still sweep
                self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(),
                                                                       name="memory-state-sweeper")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            self.sweep()

    def _remove(self, key: str) -> None:
        self._values.pop(key, None)
        self._expiry.pop(key, None)
        size = self._evictable.pop(key, None)
        if size is not None:
            self._evictable_bytes -= size

    def _live(self, key: str) -> bool:
        expires = self._expiry.get(key)
        if expires is not None and expires <= time.monotonic():
            self._remove(key)
        return key in self._values

    def _expire_in(self, key: str, ttl: float | None) -> None:
        if ttl is None:
            self._expiry.pop(key, None)
            return
        self._start_sweeping()
        expires = time.monotonic() + ttl
        self._expiry[key] = expires
        heapq.heappush(self._heap, (expires, key))
        if len(self._heap) > 2 * len(self._expiry) + 1024:  # stale entries from re-set TTLs
            self._heap = [(at, name) for name, at in self._expiry.items()]
            heapq.heapify(self._heap)

    def _put(self, key: str, value: Value) -> None:
        """Every value is written here, which keeps the byte budget."""
        previous = self._evictable.pop(key, None)
        if previous is not None:
            self._evictable_bytes -= previous
        self._values[key] = value
        if isinstance(value, bytes) and key.startswith(self._evictable_prefixes):
            self._evictable[key] = len(value)
            self._evictable_bytes += len(value)
            self._evict_past_budget(keep=key)

    def _evict_past_budget(self, keep: str) -> None:
        if self._max_evictable_bytes is None:
            return
        while self._evictable_bytes > self._max_evictable_bytes and len(self._evictable) > 1:
            oldest = next(iter(self._evictable))
            if oldest == keep:
                break
            self._remove(oldest)
            if self._on_evict is not None:
                self._on_evict(oldest)

    async def get(self, key: str) -> bytes | None:
        if not self._live(key):
            return None
        value = self._values[key]
        if isinstance(value, int):
            return str(value).encode()
        if isinstance(value, dict):
            raise TypeError(f"{key} holds a hash")
        if key in self._evictable:
            self._evictable.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.sweep()
        self._put(key, value)
        self._expire_in(key, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if self._live(key):
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._remove(key)

    def _int(self, key: str) -> int:
        if not self._live(key):
            return 0
        value = self._values[key]
        if isinstance(value, dict):
            raise TypeError(f"{key} holds a hash")
        return int(value)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        self.sweep()
        created = not self._live(key)
        value = self._int(key) + amount
        self._put(key, value)
        if created and ttl is not None:
            self._expire_in(key, ttl)
        return value

    async def incr_within(self, key: str, amount: int, limit: int, ttl: float | None = None) -> int | None:
        self.sweep()
        created = not self._live(key)
        value = self._int(key) + amount
        if value > limit:
            return None
        self._put(key, value)
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
        leases = self._leases.get(key)
        if leases is not None:
            leases.pop(holder, None)
            if not leases:
                del self._leases[key]

    async def hincr(self, key: str, field: str, amount: int, ttl: float | None = None) -> int:
        self.sweep()
        if not self._live(key):
            self._put(key, {})
            if ttl is not None:
                self._expire_in(key, ttl)
        table = self._values[key]
        if not isinstance(table, dict):
            raise TypeError(f"{key} does not hold a hash")
        table[field] = table.get(field, 0) + amount
        return table[field]

    async def hdel(self, key: str, field: str) -> None:
        if not self._live(key):
            return
        table = self._values[key]
        if not isinstance(table, dict):
            raise TypeError(f"{key} does not hold a hash")
        table.pop(field, None)
        if not table:
            self._remove(key)

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
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._values.clear()
        self._expiry.clear()
        self._heap.clear()
        self._evictable.clear()
        self._evictable_bytes = 0
        self._leases.clear()
