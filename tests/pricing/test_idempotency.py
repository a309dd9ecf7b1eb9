"""Idempotency records: one claim per key at a time, stored answers, hashed client keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.state.base import StateStore
from pricing.idempotency import IdempotencyStore


async def test_of_concurrent_twins_exactly_one_claims_the_key(store: StateStore) -> None:
    records = IdempotencyStore(store)
    claims = await asyncio.gather(*(records.claim("k", "same", ttl=60) for _ in range(10)))
    assert claims.count(True) == 1


async def test_a_claim_keeps_its_value_and_says_how_long_it_has_left(store: StateStore) -> None:
    records = IdempotencyStore(store)
    assert await records.held_claim("k", "kept") is None
    assert await records.claim("k", "kept", ttl=3600, value=b'{"run": "job_1"}')
    assert not await records.claim("k", "kept", ttl=3600, value=b'{"run": "job_2"}')

    held = await records.held_claim("k", "kept")

    assert held is not None and held[0] == b'{"run": "job_1"}'
    assert held[1] is not None and 3500 < held[1] <= 3600


async def test_a_claim_expires_after_its_ttl(store: StateStore) -> None:
    records = IdempotencyStore(store)
    assert await records.claim("k", "short", ttl=0.01)
    await asyncio.sleep(0.02)
    assert await records.claim("k", "short", ttl=60)


async def test_a_remembered_response_is_recalled_until_its_ttl(store: StateStore) -> None:
    records = IdempotencyStore(store)
    await records.remember_response("k", "req", b"payload", ttl=0.01)
    assert await records.recall_response("k", "req") == b"payload"
    assert await records.recall_response("k", "other") is None
    await asyncio.sleep(0.02)
    assert await records.recall_response("k", "req") is None


async def test_client_chosen_keys_are_hashed_before_they_reach_the_store(
    store: StateStore, store_dump: Callable[[], str]
) -> None:
    records = IdempotencyStore(store)
    odd_key = "order 42: {weird} \n key"
    await records.claim("k", odd_key, ttl=60)
    await records.remember_response("k", odd_key, b"x", ttl=60)
    assert "order 42" not in store_dump()
    assert await records.recall_response("k", odd_key) == b"x"
