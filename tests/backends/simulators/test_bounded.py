"""Bounded stores forget their oldest entries past a count or byte budget."""

from __future__ import annotations

from backends.simulators.bounded import BoundedLog, BoundedStore


def test_the_store_forgets_the_oldest_past_its_count() -> None:
    store: BoundedStore[str, int] = BoundedStore(max_entries=2)
    for number, key in enumerate("abc"):
        store.put(key, number)

    assert (store.get("a"), store.get("b"), store.get("c")) == (None, 1, 2)


def test_touching_an_entry_makes_it_the_newest() -> None:
    store: BoundedStore[str, int] = BoundedStore(max_entries=2)
    store.put("a", 1)
    store.put("b", 2)
    store.get("a", touch=True)

    store.put("c", 3)

    assert store.get("b") is None
    assert store.get("a") == 1


def test_the_store_forgets_the_oldest_past_its_byte_budget() -> None:
    store: BoundedStore[str, str] = BoundedStore(max_entries=100, max_bytes=10)
    store.put("a", "x", weight=4)
    store.put("b", "y", weight=4)
    store.put("a", "z", weight=1)  # replacing re-weighs and renews
    assert len(store) == 2

    store.put("c", "w", weight=6)

    assert store.values() == ["z", "w"]


def test_one_entry_over_budget_is_still_kept() -> None:
    store: BoundedStore[str, str] = BoundedStore(max_entries=10, max_bytes=1)

    store.put("big", "x", weight=100)

    assert store.get("big") == "x"


def test_the_log_keeps_the_newest_entries_and_hands_out_snapshots() -> None:
    log: BoundedLog[int] = BoundedLog(max_entries=3)
    for entry in range(5):
        log.append(entry)
    snapshot = log.snapshot()

    log.clear()

    assert snapshot == [2, 3, 4]
    assert log.snapshot() == []
