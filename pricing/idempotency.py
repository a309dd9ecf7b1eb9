"""Idempotency-Key records: one request runs per key, and a replay returns the stored answer.

The flow the API follows, per client key and ``Idempotency-Key``: ``recall_response`` first
(a hit is replayed as is and never charged again); otherwise ``claim`` (False means the same
key is running right now: answer 409); on success ``remember_response``; on failure
``release_claim`` so the client may retry. The claim must outlive the request (give it the
request's timeout plus a margin); the response's TTL is how long replays work.

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

    async def claim(self, api_key: str, idempotency_key: str, ttl: float) -> bool:
        """True when this caller may run the request; False when another holds the key."""
        return await self._store.set_if_absent(self._key(api_key, idempotency_key, "claim"), b"1", ttl)

    async def release_claim(self, api_key: str, idempotency_key: str) -> None:
        await self._store.delete(self._key(api_key, idempotency_key, "claim"))

    async def remember_response(self, api_key: str, idempotency_key: str, payload: bytes, ttl: float) -> None:
        await self._store.set(self._key(api_key, idempotency_key, "response"), payload, ttl)

    async def recall_response(self, api_key: str, idempotency_key: str) -> bytes | None:
        return await self._store.get(self._key(api_key, idempotency_key, "response"))
