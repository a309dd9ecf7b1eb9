"""The StateStore contract: memory and Redis behave the same, method by method.

Every test runs once per implementation (the ``store`` fixture in conftest.py is parametrised).
TTLs are short (0.15 s) and the waits only just longer.
"""

from __future__ import annotations

import asyncio

import pytest

from core.state.base import StateStore
from tests.core.state.conftest import StoredKeys

SHORT_TTL = 0.15
PAST_SHORT_TTL = 0.2


async def test_get_of_a_missing_key_is_none(store: StateStore) -> None:
    assert await store.get("nothing") is None


async def test_set_then_get_returns_the_exact_bytes(store: StateStore) -> None:
    payload = b"\x89PNG\r\n\x1a\n\x00\xff binary"
    await store.set("image", payload)
    assert await store.get("image") == payload


async def test_set_overwrites(store: StateStore) -> None:
    await store.set("k", b"one")
    await store.set("k", b"two")
    assert await store.get("k") == b"two"


async def test_set_with_ttl_expires(store: StateStore) -> None:
    await store.set("k", b"v", ttl=SHORT_TTL)
    assert await store.get("k") == b"v"
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await store.get("k") is None


async def test_set_without_ttl_removes_an_earlier_ttl(store: StateStore) -> None:
    await store.set("k", b"v", ttl=SHORT_TTL)
    await store.set("k", b"w")
    assert await store.ttl("k") is None
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await store.get("k") == b"w"


async def test_set_if_absent_sets_only_the_first_time(store: StateStore) -> None:
    assert await store.set_if_absent("idem", b"first") is True
    assert await store.set_if_absent("idem", b"second") is False
    assert await store.get("idem") == b"first"


async def test_set_if_absent_succeeds_again_once_the_key_expired(store: StateStore) -> None:
    assert await store.set_if_absent("idem", b"first", ttl=SHORT_TTL) is True
    ttl = await store.ttl("idem")
    assert ttl is not None and 0 < ttl <= SHORT_TTL
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await store.set_if_absent("idem", b"second") is True
    assert await store.get("idem") == b"second"


async def test_delete_removes_the_key_and_ignores_missing_ones(store: StateStore) -> None:
    await store.set("k", b"v")
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("never-existed")
    assert await store.set_if_absent("k", b"again") is True


async def test_incr_starts_from_zero_and_returns_the_new_value(store: StateStore) -> None:
    assert await store.incr("n") == 1
    assert await store.incr("n", 5) == 6
    assert await store.incr("n", -2) == 4
    assert await store.get("n") == b"4"


async def test_incr_ttl_applies_only_when_the_key_is_created(store: StateStore) -> None:
    assert await store.incr("window", 1, ttl=SHORT_TTL) == 1
    assert await store.incr("window", 1, ttl=60.0) == 2
    ttl = await store.ttl("window")
    assert ttl is not None and ttl <= SHORT_TTL
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await store.get("window") is None
    assert await store.incr("window", 1, ttl=60.0) == 1
    ttl = await store.ttl("window")
    assert ttl is not None and SHORT_TTL < ttl <= 60.0


async def test_incr_without_ttl_keeps_the_existing_ttl(store: StateStore) -> None:
    await store.incr("window", 1, ttl=30.0)
    await store.incr("window", 1)
    ttl = await store.ttl("window")
    assert ttl is not None and 29.0 < ttl <= 30.0


async def test_incr_within_adds_up_to_the_limit_inclusive(store: StateStore) -> None:
    assert await store.incr_within("budget", 3, limit=10) == 3
    assert await store.incr_within("budget", 7, limit=10) == 10
    assert await store.incr_within("budget", 1, limit=10) is None
    assert await store.get("budget") == b"10"


async def test_incr_within_refusal_leaves_the_value_untouched(store: StateStore) -> None:
    await store.incr_within("budget", 4, limit=10)
    assert await store.incr_within("budget", 7, limit=10) is None
    assert await store.incr_within("budget", 6, limit=10) == 10


async def test_incr_within_refused_on_a_missing_key_does_not_create_it(store: StateStore) -> None:
    assert await store.incr_within("budget", 11, limit=10) is None
    assert await store.get("budget") is None


async def test_incr_within_never_exceeds_the_limit_under_concurrency(store: StateStore) -> None:
    results = await asyncio.gather(*(store.incr_within("budget", 1, limit=20) for _ in range(50)))
    granted = sorted(value for value in results if value is not None)
    assert granted == list(range(1, 21))
    assert results.count(None) == 30
    assert await store.get("budget") == b"20"


async def test_incr_within_ttl_applies_only_when_the_key_is_created(store: StateStore) -> None:
    assert await store.incr_within("window", 1, limit=5, ttl=SHORT_TTL) == 1
    assert await store.incr_within("window", 1, limit=5, ttl=30) == 2
    ttl = await store.ttl("window")
    assert ttl is not None and 0 < ttl <= SHORT_TTL
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await store.get("window") is None
    assert await store.incr_within("window", 5, limit=5, ttl=SHORT_TTL) == 5


async def test_incr_within_refused_with_a_ttl_creates_nothing(store: StateStore) -> None:
    assert await store.incr_within("window", 6, limit=5, ttl=30) is None
    assert await store.ttl("window") is None
    assert await store.get("window") is None


async def test_leases_are_granted_up_to_the_limit_and_released(store: StateStore) -> None:
    assert await store.acquire_lease("slots", "a", limit=2, ttl=30) == 1
    assert await store.acquire_lease("slots", "b", limit=2, ttl=30) == 2
    assert await store.acquire_lease("slots", "c", limit=2, ttl=30) is None
    await store.release_lease("slots", "a")
    assert await store.acquire_lease("slots", "c", limit=2, ttl=30) == 2
    await store.release_lease("slots", "nobody")  # releasing an unknown lease is a no-op


async def test_a_holder_renewing_its_lease_takes_no_second_slot(store: StateStore) -> None:
    assert await store.acquire_lease("slots", "a", limit=1, ttl=30) == 1
    assert await store.acquire_lease("slots", "a", limit=1, ttl=30) == 1


async def test_a_lease_never_released_ends_after_its_ttl(store: StateStore) -> None:
    assert await store.acquire_lease("slots", "crashed", limit=1, ttl=SHORT_TTL) == 1
    assert await store.acquire_lease("slots", "next", limit=1, ttl=30) is None
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await store.acquire_lease("slots", "next", limit=1, ttl=30) == 1


async def test_leases_never_exceed_the_limit_under_concurrency(store: StateStore) -> None:
    results = await asyncio.gather(*(store.acquire_lease("slots", f"h{i}", limit=7, ttl=30) for i in range(40)))
    assert sorted(value for value in results if value is not None) == list(range(1, 8))
    assert results.count(None) == 33


async def test_hincr_counts_each_field_and_hgetall_returns_ints(store: StateStore) -> None:
    assert await store.hincr("ledger", "callmissed", 4) == 4
    assert await store.hincr("ledger", "callmissed", 3) == 7
    assert await store.hincr("ledger", "runflow", -1) == -1
    assert await store.hgetall("ledger") == {"callmissed": 7, "runflow": -1}


async def test_hincr_ttl_applies_only_when_the_hash_is_created(store: StateStore) -> None:
    assert await store.hincr("window", "ok", 1, ttl=SHORT_TTL) == 1
    assert await store.hincr("window", "err", 2, ttl=30) == 2
    ttl = await store.ttl("window")
    assert ttl is not None and 0 < ttl <= SHORT_TTL
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await store.hgetall("window") == {}


async def test_hdel_removes_one_field_and_the_hash_with_its_last(store: StateStore) -> None:
    await store.hincr("open", "job_a", 1)
    await store.hincr("open", "job_b", 1)
    await store.hdel("open", "job_a")
    assert await store.hgetall("open") == {"job_b": 1}
    await store.hdel("open", "job_b")
    await store.hdel("open", "job_b")  # gone already: nothing to do
    await store.hdel("never", "field")
    assert await store.hgetall("open") == {}
    assert await store.hincr("open", "job_c", 1, ttl=30) == 1  # a new hash: its TTL applies again
    ttl = await store.ttl("open")
    assert ttl is not None and ttl <= 30


async def test_deleting_a_field_of_a_value_is_a_type_error(store: StateStore) -> None:
    await store.set("k", b"v")
    with pytest.raises(TypeError):
        await store.hdel("k", "field")


async def test_hgetall_of_a_missing_key_is_empty(store: StateStore) -> None:
    assert await store.hgetall("nothing") == {}


async def test_ttl_is_none_for_missing_keys_and_keys_without_expiry(store: StateStore) -> None:
    assert await store.ttl("nothing") is None
    await store.set("forever", b"v")
    assert await store.ttl("forever") is None


async def test_ttl_reports_the_seconds_left(store: StateStore) -> None:
    await store.set("k", b"v", ttl=30.0)
    ttl = await store.ttl("k")
    assert ttl is not None and 29.0 < ttl <= 30.0


async def test_ttl_keeps_sub_second_precision(store: StateStore) -> None:
    await store.set("k", b"v", ttl=0.5)
    ttl = await store.ttl("k")
    assert ttl is not None and 0.3 < ttl <= 0.5


async def test_reading_a_hash_as_a_value_is_a_type_error(store: StateStore) -> None:
    await store.hincr("ledger", "f", 1)
    with pytest.raises(TypeError):
        await store.get("ledger")


async def test_reading_a_value_as_a_hash_is_a_type_error(store: StateStore) -> None:
    await store.set("k", b"v")
    with pytest.raises(TypeError):
        await store.hgetall("k")


async def test_keys_past_their_ttl_leave_without_being_read(forgetting_store: StateStore,
                                                           stored_keys: StoredKeys) -> None:
    store = forgetting_store
    baseline = await stored_keys(store)
    # Long enough for 200 writes on a loaded machine (1 s was not, at load 9-12): every key is
    # counted before it goes.
    ttl = 2.5
    for index in range(200):
        await store.set(f"image:{index}", b"\x89PNG" + bytes(10_000), ttl=ttl)
    await store.incr("counter", 1, ttl=ttl)
    await store.set("kept", b"v")
    assert await stored_keys(store) == baseline + 202

    # Nothing is read or written meanwhile; Redis expires keys in the background, ten times a second.
    for _ in range(200):
        await asyncio.sleep(0.05)
        if await stored_keys(store) == baseline + 1:
            break
    assert await stored_keys(store) == baseline + 1
