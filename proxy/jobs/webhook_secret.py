"""Each client key's webhook secret, derived rather than stored: ``whsec_`` + HMAC-SHA256 of the
key's id under one root secret.

Derived, so static keys from config have one too and nothing new needs storing per key. The
root is ``jobs.webhook_root_secret`` when set (give every replica the same), else a random one
made on first use and kept in the durable state store (SQLite file or Redis), so it survives
restarts and replicas sharing Redis agree. A key's holder reads its secret at
``GET /v1/webhooks/secret``; the admin API returns it once when it creates a key. Changing the
root changes every key's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from core.state.base import StateStore

ROOT_KEY = "jobs:webhook-root-secret"


class WebhookSecrets:
    def __init__(self, store: StateStore, root: str | None = None) -> None:
        self._store = store
        self._root = root.encode() if root else None

    async def _root_secret(self) -> bytes:
        if self._root is None:
            await self._store.set_if_absent(ROOT_KEY, secrets.token_bytes(32))
            stored = await self._store.get(ROOT_KEY)
            assert stored is not None, "just set if absent"
            self._root = stored
        return self._root

    async def secret_for(self, key_id: str) -> str:
        digest = hmac.new(await self._root_secret(), b"webhook:" + key_id.encode(), hashlib.sha256).digest()
        return "whsec_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
