"""Client API keys: ``bg-<random>`` strings, of which only a SHA-256 hash is ever stored.

Keys come from two places: keys created at run time (kept in the state store, so replicas
sharing Redis agree) and static keys from config (their values read from the environment).
A key's id is the hex SHA-256 of the key; it names the key in the ledger, logs and admin
listings, and cannot be turned back into the key. Revoking a static key stores a revoked
record under its id, which wins over config.

State::

    apikey:<key_id>   the record as JSON (name, budget_credits, created, revoked)
    apikey:index      a hash whose fields are every stored key id (the store cannot list keys)
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from core.state.base import StateStore
from pricing.config import KeyLimits, KeyPolicy, KeyRouting

KEY_PREFIX = "bg-"


def utc_now() -> datetime:
    return datetime.now(UTC)


def key_id_of(key: str) -> str:
    """The id under which ``key`` is stored: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh client key: the prefix and 32 random bytes, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the gateway knows about a client key (never the key itself)."""

    key_id: str
    name: str
    budget_credits: Decimal | None
    created: datetime
    revoked: bool = False
    static: bool = False
    """Declared in config rather than created at run time."""
    limits: KeyLimits | None = None
    """The key's own rate limits; None: the gateway's default."""
    routing: KeyRouting | None = None
    """What its requests may ask of the router; None: anything."""

    def to_json(self) -> bytes:
        budget = None if self.budget_credits is None else str(self.budget_credits)
        return json.dumps(
            {
                "name": self.name,
                "budget_credits": budget,
                "created": self.created.isoformat(),
                "revoked": self.revoked,
                "static": self.static,
                "limits": None if self.limits is None else self.limits.model_dump(),
                "routing": None if self.routing is None else self.routing.model_dump(mode="json"),
            }
        ).encode()

    @classmethod
    def from_json(cls, key_id: str, raw: bytes) -> KeyRecord:
        data = json.loads(raw)
        budget = data["budget_credits"]
        return cls(
            key_id=key_id,
            name=data["name"],
            budget_credits=None if budget is None else Decimal(budget),
            created=datetime.fromisoformat(data["created"]),
            revoked=data["revoked"],
            static=data.get("static", False),
            limits=None if data.get("limits") is None else KeyLimits.model_validate(data["limits"]),
            routing=None if data.get("routing") is None else KeyRouting.model_validate(data["routing"]),
        )


class ApiKeyRegistry:
    """Create, look up, list and revoke client keys."""

    def __init__(
        self,
        store: StateStore,
        static_keys: Mapping[str, KeyPolicy] | Sequence[str] = (),
        *,
        clock: Callable[[], datetime] = utc_now,
        prefix: str = "apikey",
    ) -> None:
        self._store = store
        self._clock = clock
        self._prefix = prefix
        if not isinstance(static_keys, Mapping):
            static_keys = {key: KeyPolicy(name=f"static-{i}") for i, key in enumerate(static_keys, 1)}
        started = clock()
        self._static: dict[str, KeyRecord] = {}
        for key, policy in static_keys.items():
            key_id = key_id_of(key)
            self._static[key_id] = KeyRecord(key_id, policy.name, policy.budget_credits, started, static=True,
                                             limits=policy.limits, routing=policy.routing)

    def _record_key(self, key_id: str) -> str:
        return f"{self._prefix}:{key_id}"

    async def _stored(self, key_id: str) -> KeyRecord | None:
        raw = await self._store.get(self._record_key(key_id))
        return None if raw is None else KeyRecord.from_json(key_id, raw)

    async def _save(self, record: KeyRecord) -> None:
        await self._store.set(self._record_key(record.key_id), record.to_json())
        await self._store.hincr(f"{self._prefix}:index", record.key_id, 1)

    async def create(self, name: str, budget_credits: Decimal | None = None,
                     limits: KeyLimits | None = None, routing: KeyRouting | None = None) -> tuple[str, KeyRecord]:
        """A new key and its record. The key is shown once, here; only its hash is kept."""
        if budget_credits is not None and budget_credits < 0:
            raise ValueError("budget_credits must be >= 0")
        key = new_key()
        record = KeyRecord(key_id_of(key), name, budget_credits, self._clock(), limits=limits, routing=routing)
        await self._save(record)
        return key, record

    async def get(self, key_id: str) -> KeyRecord | None:
        """The record for ``key_id``, revoked or not; None when no such key exists."""
        return await self._stored(key_id) or self._static.get(key_id)

    async def lookup(self, key: str) -> KeyRecord | None:
        """The live record for a presented key; None when unknown or revoked."""
        record = await self.get(key_id_of(key))
        return None if record is None or record.revoked else record

    async def revoke_id(self, key_id: str) -> bool:
        """Revoke by key id (what admins see); True when the key existed."""
        record = await self.get(key_id)
        if record is None:
            return False
        await self._save(replace(record, revoked=True))
        return True

    async def list(self) -> list[KeyRecord]:
        """Every key, static and created, revoked ones included, oldest first."""
        stored = await self._store.hgetall(f"{self._prefix}:index")
        records = {key_id: record for key_id in stored if (record := await self._stored(key_id))}
        records = self._static | records
        return sorted(records.values(), key=lambda r: (r.created, r.name, r.key_id))
