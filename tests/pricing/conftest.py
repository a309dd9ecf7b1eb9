"""Fixtures for the pricing tests: a state store that interleaves and remembers what it wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from proxy.request import ImageRequest
from proxy.state.memory import MemoryStateStore


class InterleavingStore(MemoryStateStore):
    """``MemoryStateStore`` that yields to the event loop before every call.

    Concurrent callers therefore interleave between any two store operations, as they would
    against Redis, so a read-then-write race in the code under test would show. It also keeps
    every key and value written, to check what is (and is not) stored.
    """

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[str, bytes]] = []

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0)
        return await super().get(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await asyncio.sleep(0)
        self.written.append((key, value))
        await super().set(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        await asyncio.sleep(0)
        self.written.append((key, value))
        return await super().set_if_absent(key, value, ttl)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        await asyncio.sleep(0)
        self.written.append((key, str(amount).encode()))
        return await super().incr(key, amount, ttl)

    async def incr_within(self, key: str, amount: int, limit: int) -> int | None:
        await asyncio.sleep(0)
        self.written.append((key, str(amount).encode()))
        return await super().incr_within(key, amount, limit)

    async def hincr(self, key: str, field: str, amount: int) -> int:
        await asyncio.sleep(0)
        self.written.append((f"{key}#{field}", str(amount).encode()))
        return await super().hincr(key, field, amount)

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
