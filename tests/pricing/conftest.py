"""Fixtures for the pricing tests: a state store that interleaves and remembers what it wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from core.request import ImageRequest
from core.state.memory import MemoryStateStore


class InterleavingStore:
    """A ``MemoryStateStore`` behind a wrapper that yields to the event loop before every call.

    Concurrent callers therefore interleave between any two store operations, as they would
    against Redis, so a read-then-write race in the code under test would show. It also keeps
    every key and value written, to check what is (and is not) stored.
    """

    def __init__(self) -> None:
        self._inner = MemoryStateStore()
        self.written: list[tuple[str, bytes]] = []

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0)
        return await self._inner.get(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await asyncio.sleep(0)
        self.written.append((key, value))
        await self._inner.set(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        await asyncio.sleep(0)
        self.written.append((key, value))
        return await self._inner.set_if_absent(key, value, ttl)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        await asyncio.sleep(0)
        self.written.append((key, str(amount).encode()))
        return await self._inner.incr(key, amount, ttl)

    async def incr_within(self, key: str, amount: int, limit: int) -> int | None:
        await asyncio.sleep(0)
        self.written.append((key, str(amount).encode()))
        return await self._inner.incr_within(key, amount, limit)

    async def hincr(self, key: str, field: str, amount: int) -> int:
        await asyncio.sleep(0)
        self.written.append((f"{key}#{field}", str(amount).encode()))
        return await self._inner.hincr(key, field, amount)

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        await self._inner.delete(key)

    async def hgetall(self, key: str) -> dict[str, int]:
        await asyncio.sleep(0)
        return await self._inner.hgetall(key)

    async def ttl(self, key: str) -> float | None:
        return await self._inner.ttl(key)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def everything_written(self) -> str:
        return "\n".join(f"{key} {value!r}" for key, value in self.written)


@pytest.fixture
def store() -> InterleavingStore:
    return InterleavingStore()


@pytest.fixture
def image_request() -> ImageRequest:
    """One 1024x1024 4-step image: the reference every catalog price is written for."""
    return ImageRequest(prompt="a lighthouse at dusk", seed=7)


@pytest.fixture
def store_dump(store: InterleavingStore) -> Callable[[], str]:
    """Every key and value written to ``store`` so far, as one text to search."""
    return store.everything_written
