"""Idempotency-Key records: one request runs per key, and a replay returns the stored answer.

The flow the API follows, per client key and ``Idempotency-Key``: ``recall_response`` first
(a hit is replayed as is and never charged again); otherwise ``claim`` (False means the key was
claimed before: ``held_claim`` says by what request and how long ago, see ``proxy.claims``); on
success ``remember_response``; on a failure that charged nothing ``release_claim`` so the client
may retry. The claim lasts as long as replays do: whatever happens after it was taken (the store
down when the answer is remembered, the process killed), the key never runs a second time.

Client-chosen keys are hashed before they become state keys, so any string is safe and the
state key's length is bounded.
"""

from __future__ import annotations

import hashlib

from core.state.base import StateStore


class IdempotencyStore:
    """Claims and stored responses, per (client key id, Idempotency-Key)."""

    def __init__(self, store: StateStore, prefix: str = "idem") -> None:
        self._store = store
        self._prefix = prefix

    def _key(self, api_key: str, idempotency_key: str, kind: str) -> str:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
        return f"{self._prefix}:{api_key}:{digest}:{kind}"

    async def claim(self, api_key: str, idempotency_key: str, ttl: float, value: bytes = b"1") -> bool:
        """True when this caller may run the request; False when another holds the key.
        ``value`` is what the claim keeps (``proxy.claims.Claim``: the request, its run)."""
        return await self._store.set_if_absent(self._key(api_key, idempotency_key, "claim"), value, ttl)

    async def held_claim(self, api_key: str, idempotency_key: str) -> tuple[bytes, float | None] | None:
        """The claim's value and the seconds its TTL has left; None when the key is not claimed."""
        key = self._key(api_key, idempotency_key, "claim")
        value = await self._store.get(key)
        return None if value is None else (value, await self._store.ttl(key))

    async def release_claim(self, api_key: str, idempotency_key: str) -> None:
        await self._store.delete(self._key(api_key, idempotency_key, "claim"))

    async def remember_response(self, api_key: str, idempotency_key: str, payload: bytes, ttl: float) -> None:
        await self._store.set(self._key(api_key, idempotency_key, "response"), payload, ttl)

    async def recall_response(self, api_key: str, idempotency_key: str) -> bytes | None:
        return await self._store.get(self._key(api_key, idempotency_key, "response"))
