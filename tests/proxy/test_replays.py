"""Idempotent replays keep references to stored images, never base64 copies."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import IdempotencyConflict
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from proxy.billing import ANONYMOUS
from proxy.gateway import Gateway
from proxy.settings import Settings
from proxy.wiring import Stores, assemble_gateway
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to
from tests.proxy.test_gateway import BASE_URL, request


def gateway(vendor: ScriptedBackend, state: MemoryStateStore, image_ttl_s: float = 3600) -> Gateway:
    settings = Settings(simulators="off", retry=NO_BACKOFF, deadline_s=5, api_keys={}, require_api_key=False,
                        image_ttl_s=image_ttl_s)
    return assemble_gateway(settings, Stores(state, state, MemoryLedgerStore()), [route_to(vendor)])


def replay_records(state: MemoryStateStore) -> list[bytes]:
    return [value for key, value in state._values.items() if key.endswith(":response") and isinstance(value, bytes)]


async def test_a_base64_answer_is_remembered_by_reference_and_replayed_whole() -> None:
    vendor, state = ScriptedBackend("runflow"), MemoryStateStore()
    served = gateway(vendor, state)
    asked = request(response_format="b64_json", n=2)

    first = await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-1")
    again = await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-1")

    assert len(vendor.calls) == 1
    assert again.body["data"] == first.body["data"]
    [record] = replay_records(state)
    assert b"b64_json" not in record and record.count(b"image_ref") == 2
    assert len(record) < 2000  # two names, not two images


async def test_once_the_images_expired_a_replay_is_refused_and_never_generated_again() -> None:
    vendor, state = ScriptedBackend("runflow"), MemoryStateStore()
    served = gateway(vendor, state, image_ttl_s=0.1)
    asked = request(response_format="b64_json")
    await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-2")
    await asyncio.sleep(0.2)

    with pytest.raises(IdempotencyConflict) as refused:
        await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-2")

    assert refused.value.code == "idempotent_replay_expired"
    assert len(vendor.calls) == 1
