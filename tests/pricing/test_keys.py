"""Client API keys: created once, stored only as a hash, looked up, listed and revoked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.state.base import StateStore
from pricing.config import KeyPolicy
from pricing.keys import ApiKeyRegistry, key_id_of

NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def registry(store: StateStore, static: dict[str, KeyPolicy] | list[str] | None = None) -> ApiKeyRegistry:
    return ApiKeyRegistry(store, static or {}, clock=lambda: NOW)


async def test_a_created_key_looks_like_bg_random_and_can_be_looked_up(store: StateStore) -> None:
    keys = registry(store)
    key, record = await keys.create("ci", Decimal("500"))
    assert key.startswith("bg-")
    assert len(key) > 40
    assert record.key_id == hashlib.sha256(key.encode()).hexdigest()
    assert (record.name, record.budget_credits, record.created, record.revoked) == ("ci", Decimal("500"), NOW, False)
    assert await keys.lookup(key) == record
    assert await keys.lookup(key + "x") is None
    assert await keys.lookup("") is None
    other, _ = await keys.create("ci")
    assert other != key


async def test_only_the_hash_is_stored_never_the_key(store: StateStore, store_dump: Callable[[], str]) -> None:
    key, record = await registry(store).create("ci", Decimal("1.5"))
    written = store_dump()
    assert key not in written
    assert key[3:] not in written
    assert record.key_id in written


async def test_keys_are_shared_by_every_registry_over_one_store(store: StateStore) -> None:
    key, record = await registry(store).create("replica test")
    assert await registry(store).lookup(key) == record


async def test_a_revoked_key_no_longer_looks_up_but_is_still_listed(store: StateStore) -> None:
    keys = registry(store)
    key, record = await keys.create("leaked")
    kept, _ = await keys.create("kept")
    assert await keys.revoke_id(record.key_id) is True
    assert await keys.lookup(key) is None
    assert await keys.lookup(kept) is not None
    revoked = await keys.get(record.key_id)
    assert revoked is not None and revoked.revoked
    assert {(r.name, r.revoked) for r in await keys.list()} == {("leaked", True), ("kept", False)}


async def test_revoking_what_does_not_exist_says_so(store: StateStore) -> None:
    keys = registry(store)
    assert await keys.revoke_id(key_id_of("bg-never-issued")) is False
    assert await keys.revoke_id("0" * 64) is False


async def test_static_keys_from_config(store: StateStore) -> None:
    keys = registry(store, {"bg-from-env": KeyPolicy(name="ops", budget_credits=Decimal("250"))})
    record = await keys.lookup("bg-from-env")
    assert record is not None
    assert (record.name, record.budget_credits, record.static) == ("ops", Decimal("250"), True)
    assert record.key_id == key_id_of("bg-from-env")
    assert [r.name for r in await keys.list()] == ["ops"]


async def test_a_plain_list_of_static_keys_has_no_budget(store: StateStore) -> None:
    keys = registry(store, ["bg-one", "bg-two"])
    one = await keys.lookup("bg-one")
    assert one is not None and one.budget_credits is None
    assert sorted(r.name for r in await keys.list()) == ["static-1", "static-2"]


async def test_a_static_key_can_be_revoked_at_run_time(store: StateStore) -> None:
    static = {"bg-from-env": KeyPolicy(name="ops")}
    assert await registry(store, static).revoke_id(key_id_of("bg-from-env")) is True
    assert await registry(store, static).lookup("bg-from-env") is None
    listed = await registry(store, static).list()
    assert [(r.name, r.revoked, r.static) for r in listed] == [("ops", True, True)]


async def test_a_negative_budget_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="budget_credits"):
        await registry(store).create("bad", Decimal("-1"))
