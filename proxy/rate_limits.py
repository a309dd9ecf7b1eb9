"""Per-key rate limits: requests per minute, images per minute, concurrent requests.

Counted in the state store, so replicas sharing Redis share one count per key. Each check is one
atomic store operation: a per-minute count is ``incr_within`` on a window key that the first
request of the window creates with a 60 s TTL (the window lives in the store, so replicas'
clocks do not matter), and concurrency is a lease that ends when the request does or, should a
replica die holding it, after ``lease_ttl_s``. A refused request is not counted. Answers carry OpenAI's
``x-ratelimit-{limit,remaining,reset}-{requests,images}`` headers plus plain
``x-ratelimit-limit/remaining/reset`` for the tightest limit; a refusal is 429 with Retry-After.

State::

    ratelimit:<key id>:requests     requests counted in the current window (TTL: the window's end)
    ratelimit:<key id>:images       images asked for in the current window
    ratelimit:<key id>:concurrent   the leases of requests in flight (running jobs included)
"""

from __future__ import annotations

import asyncio
import math
import secrets
from dataclasses import dataclass, field

from core.errors import DEFAULT_RETRY_AFTER_S, InvalidRequest, KeyRateLimited
from core.state.base import StateStore
from pricing.config import KeyLimits
from pricing.keys import KeyRecord

WINDOW_S = 60.0
"""A per-minute limit's window."""


@dataclass(frozen=True, slots=True)
class Count:
    """Where one limit stands after this request."""

    name: str
    limit: int
    remaining: int
    reset_s: float | None

    def headers(self) -> dict[str, str]:
        headers = {f"x-ratelimit-limit-{self.name}": str(self.limit),
                   f"x-ratelimit-remaining-{self.name}": str(self.remaining)}
        if self.reset_s is not None:
            headers[f"x-ratelimit-reset-{self.name}"] = str(math.ceil(self.reset_s))
        return headers


def _headers(counts: list[Count], binding: Count | None = None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for count in counts:
        headers.update(count.headers())
    tightest = binding or min(counts, key=lambda count: count.remaining / count.limit, default=None)
    if tightest is not None:
        headers["x-ratelimit-limit"] = str(tightest.limit)
        headers["x-ratelimit-remaining"] = str(tightest.remaining)
        headers["x-ratelimit-reset"] = str(math.ceil(tightest.reset_s or DEFAULT_RETRY_AFTER_S))
    return headers


@dataclass(slots=True)
class Admission:
    """A request let in: its headers, and the concurrency lease to give back when it ends."""

    headers: dict[str, str] = field(default_factory=dict)
    _lease: tuple[StateStore, str, str] | None = None

    async def release(self) -> None:
        if self._lease is not None:
            store, key, holder = self._lease
            self._lease = None
            await asyncio.shield(store.release_lease(key, holder))


class KeyRateLimiter:
    def __init__(self, store: StateStore, default: KeyLimits, *, lease_ttl_s: float,
                 window_s: float = WINDOW_S) -> None:
        self.store = store
        self.default = default
        self.lease_ttl_s = lease_ttl_s
        self.window_s = window_s

    def limits_for(self, key: KeyRecord) -> KeyLimits:
        return key.limits if key.limits is not None else self.default

    async def admit(self, key: KeyRecord, images: int, *, in_flight: bool = True) -> Admission:
        """Count this request against ``key``'s limits, or raise ``KeyRateLimited`` (429).
        ``in_flight`` False: count it per minute only, not as a request in flight (a job's
        submit: its run takes a slot of ``concurrent_requests`` when it starts, ``slot``)."""
        limits = self.limits_for(key)
        if limits.unlimited:
            return Admission()
        if limits.images_per_minute is not None and images > limits.images_per_minute:
            raise InvalidRequest(f"n={images} is more than this key's {limits.images_per_minute} images per minute",
                                 param="n")
        prefix = f"ratelimit:{key.key_id}"
        admission = Admission()
        counts: list[Count] = []
        if limits.concurrent_requests is not None and in_flight:
            held = await self._lease(key, limits.concurrent_requests, admission)
            if held is None:
                refused = Count("concurrent", limits.concurrent_requests, 0, None)
                raise KeyRateLimited(f"This key already has {limits.concurrent_requests} requests in flight",
                                     headers=_headers([refused], refused))
            counts.append(Count("concurrent", limits.concurrent_requests, limits.concurrent_requests - held, None))
        try:
            for name, limit, amount in (("requests", limits.requests_per_minute, 1),
                                        ("images", limits.images_per_minute, images)):
                if limit is None:
                    continue
                used = await self.store.incr_within(f"{prefix}:{name}", amount, limit, ttl=self.window_s)
                reset_s = await self.store.ttl(f"{prefix}:{name}") or 0.0
                if used is None:
                    refused = Count(name, limit, 0, reset_s)
                    raise KeyRateLimited(f"This key's limit of {limit} {name} per minute is reached",
                                         retry_after=reset_s, headers=_headers([*counts, refused], refused))
                counts.append(Count(name, limit, limit - used, reset_s))
        except BaseException:
            await self._undo(prefix, counts, images)
            await admission.release()
            raise
        admission.headers = _headers(counts)
        return admission

    async def slot(self, key: KeyRecord) -> Admission | None:
        """One of ``key``'s ``concurrent_requests``, for a job about to run (its submit was
        counted per minute already); None while the key has that many requests in flight. A key
        without a concurrency limit always gets one (nothing to give back)."""
        limit = self.limits_for(key).concurrent_requests
        admission = Admission()
        if limit is not None and await self._lease(key, limit, admission) is None:
            return None
        return admission

    async def _lease(self, key: KeyRecord, limit: int, admission: Admission) -> int | None:
        """Take a lease of ``key``'s concurrency into ``admission``: how many are held with it,
        or None (nothing taken) at the limit."""
        holder, name = secrets.token_hex(8), f"ratelimit:{key.key_id}:concurrent"
        held = await self.store.acquire_lease(name, holder, limit, self.lease_ttl_s)
        if held is not None:
            admission._lease = (self.store, name, holder)
        return held

    async def _undo(self, prefix: str, counts: list[Count], images: int) -> None:
        """Un-count what this refused request had counted: a refusal does not use the window."""
        for count in counts:
            if count.name in ("requests", "images"):
                amount = 1 if count.name == "requests" else images
                await self.store.incr(f"{prefix}:{count.name}", -amount, ttl=self.window_s)
