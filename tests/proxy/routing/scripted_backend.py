"""A test double for the ``backends.base.Backend`` protocol: plays a script, records every call.

Each call to ``generate`` takes the next step of the script: ``"ok"`` answers ``n`` noisy PNGs,
``"hang"`` never answers (the router's deadline must cut it), a number answers ``"ok"`` after
that many seconds, a ``BackendError`` instance is
raised, a ``BackendResult`` is returned as is. Once the script runs out every call is ``"ok"``.
Health probes play ``probe_script`` the same way (passing once it runs out).
"""

from __future__ import annotations

import asyncio
import io
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from PIL import Image

from backends.base import BackendResult, Capabilities, GeneratedImage, ProbeOutcome
from core.create_key import current_create_key
from core.deadline import Deadline
from core.errors import BackendError
from core.request import ImageRequest
from core.state.memory import MemoryStateStore
from proxy.routing.health import RouteHealth
from proxy.routing.route import Route
from proxy.routing.router import LossRecorder, PriceOf, Router
from proxy.settings import BreakerConfig, RetryConfig

Step = Literal["ok", "hang"] | float | BackendError | BackendResult

NO_BACKOFF = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0)
"""Retries without waiting, so that tests of the retry logic take no time."""


@cache
def noisy_png(side: int = 64, seed: int = 7) -> bytes:
    """A PNG of random pixels: compresses badly, so it is never mistaken for a blank image."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG")
    return out.getvalue()


@cache
def solid_png(side: int = 256, colour: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """A single-colour PNG: what a vendor's safety filter answers instead of the image."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, format="PNG")
    return out.getvalue()


def images(count: int, data: bytes | None = None) -> BackendResult:
    return BackendResult(images=[GeneratedImage(data=data or noisy_png()) for _ in range(count)])


@dataclass(eq=False)
class ScriptedBackend:
    """A backend whose answers are written down in advance."""

    vendor: str
    region: str = "r1"
    script: deque[Step] = field(default_factory=deque)
    capabilities: Capabilities = field(default_factory=Capabilities)
    calls: list[ImageRequest] = field(default_factory=list)
    create_keys: list[str | None] = field(default_factory=list)
    """The vendor idempotency key each call carried (``core.create_key``, what ``VendorBackend`` sends)."""
    call_times: list[float] = field(default_factory=list)
    cancelled: int = 0
    """Calls cancelled while in flight (a hedge's loser, a client gone)."""
    closed: bool = False
    probe_script: deque[ProbeOutcome] = field(default_factory=deque)
    probes: int = 0

    @classmethod
    def playing(cls, vendor: str, *steps: Step, region: str = "r1",
                capabilities: Capabilities | None = None) -> ScriptedBackend:
        return cls(vendor, region, deque(steps), capabilities or Capabilities())

    async def generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
        self.calls.append(request)
        self.create_keys.append(current_create_key())
        self.call_times.append(asyncio.get_running_loop().time())
        step: Step = self.script.popleft() if self.script else "ok"
        try:
            if step == "hang":
                await asyncio.Event().wait()
            if isinstance(step, float | int):
                await asyncio.sleep(step)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if isinstance(step, BackendError):
            raise step
        if isinstance(step, BackendResult):
            return step
        return images(request.n)

    async def probe(self, timeout_s: float) -> ProbeOutcome:
        self.probes += 1
        return self.probe_script.popleft() if self.probe_script else ProbeOutcome(True, "scripted pass")

    async def aclose(self) -> None:
        self.closed = True


def route_to(backend: ScriptedBackend, *, priority: int = 100, weight: float = 1.0,
             max_attempts: int = 3, account: str | None = None, region_rank: int = 0) -> Route:
    """A route as the wiring builds one: each vendor its own account unless ``account`` says."""
    return Route(backend, priority=priority, weight=weight, max_attempts=max_attempts,
                 account=account if account is not None else backend.vendor, region_rank=region_rank)


def router_over(
    routes: Iterable[Route],
    *,
    retry: RetryConfig = NO_BACKOFF,
    breaker: BreakerConfig | None = None,
    policy: str = "priority",
    price_of: PriceOf | None = None,
    content_filter_action: str = "failover",
    on_loss: LossRecorder | None = None,
) -> Router:
    """A router over ``routes`` with its own in-memory health state."""
    health = RouteHealth(MemoryStateStore(), breaker or BreakerConfig())
    return Router(list(routes), health, retry, policy=policy, price_of=price_of,
                  content_filter_action=content_filter_action, on_loss=on_loss)
