"""What only the memory store does: a byte budget for images, least recently used out first."""

from __future__ import annotations

from core.state.memory import MemoryStateStore

KB = 1024


async def test_images_past_the_byte_budget_are_evicted_least_recently_used_first() -> None:
    evicted: list[str] = []
    store = MemoryStateStore(max_evictable_bytes=30 * KB, on_evict=evicted.append)
    for name in ("a", "b", "c"):
        await store.set(f"image:{name}", bytes(10 * KB), ttl=60)
    await store.get("image:a")  # a is now the most recently used

    await store.set("image:d", bytes(10 * KB), ttl=60)

    assert evicted == ["image:b"]
    assert await store.get("image:b") is None
    assert all([await store.get(f"image:{name}") for name in ("a", "c", "d")])
    assert store.evictable_bytes == 30 * KB
    await store.aclose()


async def test_money_and_idempotency_records_are_never_evicted() -> None:
    store = MemoryStateStore(max_evictable_bytes=10 * KB)
    await store.set("idem:key:response", bytes(50 * KB), ttl=60)
    await store.incr_within("ledger:key:committed", 5, 100)
    for index in range(10):
        await store.set(f"image:{index}", bytes(5 * KB), ttl=60)

    assert await store.get("idem:key:response") == bytes(50 * KB)
    assert await store.get("ledger:key:committed") == b"5"
    assert store.evictable_bytes <= 10 * KB
    await store.aclose()


async def test_overwriting_and_deleting_keep_the_byte_count_exact() -> None:
    store = MemoryStateStore(max_evictable_bytes=100 * KB)
    await store.set("image:a", bytes(10 * KB))
    await store.set("image:a", bytes(4 * KB))
    await store.set("image:b", bytes(6 * KB))
    await store.delete("image:b")
    assert store.evictable_bytes == 4 * KB
    await store.aclose()


async def test_re_setting_ttls_does_not_grow_the_expiry_heap_without_bound() -> None:
    store = MemoryStateStore()
    for _ in range(10_000):
        await store.set("claim", b"1", ttl=3600)
    assert len(store._heap) <= 2 * len(store._expiry) + 1025
    await store.aclose()


def test_an_empty_store_is_truthy() -> None:
    """``budgets or state`` and ``store or MemoryStateStore()`` must keep an empty store they were given."""
    assert MemoryStateStore()
