"""One image request, start to finish: bill it, route it, honour the format, store or inline
the images, and say how it was served.

Front doors (generations, edits) build an ``ImageRequest`` and hand it here; they never talk to
backends themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from backends.base import GeneratedImage
from core.deadline import Deadline
from core.errors import IdempotencyConflict, NoBackendAvailable
from core.request import ImageRequest
from core.state.base import StateStore
from pricing.keys import KeyRecord
from proxy.billing import Billing
from proxy.images.convert import to_format
from proxy.images.store import ImageStore
from proxy.metrics import GATEWAY_OVERHEAD_SECONDS, IMAGES, labelled
from proxy.routing.router import RoutedResult, Router

REPLAY_TTL_S = 24 * 3600.0
"""How long an ``Idempotency-Key``'s answer is kept for replays."""


@dataclass(slots=True)
class ImagesResponse:
    """The OpenAI-shaped body and the headers that say how the request was served."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Gateway:
    def __init__(self, router: Router, images: ImageStore, state: StateStore, billing: Billing, *,
                 deadline_s: float, public_base_url: str | None = None) -> None:
        self.router = router
        self.images = images
        self.state = state
        self.billing = billing
        self.deadline_s = deadline_s
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    async def generate(self, request: ImageRequest, *, base_url: str, key: KeyRecord,
                       idempotency_key: str | None = None) -> ImagesResponse:
        if idempotency_key is None:
            return await self._generate(request, base_url, key)
        ledger = self.billing.ledger
        fingerprint = request_fingerprint(request)
        replay = await ledger.recall_response(key.key_id, idempotency_key)
        if replay is not None:
            return _replayed(replay, fingerprint)
        if not await ledger.claim_idempotency(key.key_id, idempotency_key, ttl=self.deadline_s + 60):
            raise IdempotencyConflict("A request with this Idempotency-Key is still in progress",
                                      param="Idempotency-Key")
        try:
            served = await self._generate(request, base_url, key)
        except BaseException:
            await ledger.release_idempotency(key.key_id, idempotency_key)
            raise
        await ledger.remember_response(key.key_id, idempotency_key,
                                       orjson.dumps({"body": served.body, "headers": served.headers,
                                                     "fingerprint": fingerprint}),
                                       ttl=REPLAY_TTL_S)
        return served

    async def _generate(self, request: ImageRequest, base_url: str, key: KeyRecord) -> ImagesResponse:
        started = time.monotonic()
        deadline = Deadline(self.deadline_s)
        plan = await self.router.candidates(request)
        if not plan[0]:
            raise NoBackendAvailable("No route can serve this request", skipped=plan[1])
        reservation = await self.billing.reserve(key, request, plan[0])
        try:
            routed = await self.router.generate(request, deadline, plan)
            images = routed.result.images[: request.n]
            if request.output_compression is not None or any(image.format != request.output_format
                                                             for image in images):
                images = list(await asyncio.gather(*(to_format(image, request.output_format, request.output_compression)
                                                     for image in images)))
            data = await self._render(images, request, self.public_base_url or base_url.rstrip("/"))
        except BaseException:
            await self.billing.ledger.release(reservation)
            raise
        vendor = routed.route.vendor
        quote = self.billing.quote(vendor, request, run_seconds=routed.result.run_seconds, images=len(images))
        charge = await self.billing.settle(reservation, vendor, quote)
        labelled(IMAGES, vendor).inc(len(images))
        GATEWAY_OVERHEAD_SECONDS.observe(max(0.0, time.monotonic() - started - routed.backend_seconds))
        return ImagesResponse(
            body={
                "created": int(time.time()),
                "data": data,
                "output_format": request.output_format,
                "size": request.size,
                "seed": request.seed,
                "billing": charge.billing(),
            },
            headers={**served_headers(routed, request), **charge.headers()},
        )

    async def _render(
        self, images: list[GeneratedImage], request: ImageRequest, base_url: str
    ) -> list[dict[str, Any]]:
        if request.response_format == "b64_json":
            return [{"b64_json": image.b64, "revised_prompt": request.prompt} for image in images]
        names = [await self.images.put(image.data, image.format) for image in images]
        return [{"url": f"{base_url}/v1/images/files/{name}", "revised_prompt": request.prompt}
                for name in names]


def served_headers(routed: RoutedResult, request: ImageRequest) -> dict[str, str]:
    headers = {
        "x-boltgate-backend": routed.route.vendor,
        "x-boltgate-region": routed.route.region,
        "x-boltgate-attempts": str(len(routed.attempts)),
        "x-boltgate-seed": str(request.seed),
    }
    result = routed.result
    if result.vendor_cost_usd is not None:  # what the vendor says it billed, for reconciliation
        headers["x-boltgate-vendor-reported-cost-usd"] = str(result.vendor_cost_usd)
    if result.run_seconds is not None:
        headers["x-boltgate-run-seconds"] = f"{result.run_seconds:.3f}"
    if result.vendor_request_id is not None:
        headers["x-boltgate-vendor-request-id"] = result.vendor_request_id
    return headers


def request_fingerprint(request: ImageRequest) -> str:
    """What the client asked for (a seed the gateway drew is not part of it)."""
    asked = request.model_dump_json(include=request.model_fields_set)
    return hashlib.sha256(asked.encode()).hexdigest()


def _replayed(raw: bytes, fingerprint: str) -> ImagesResponse:
    """A remembered answer, served again at no cost, to the same request only."""
    stored = orjson.loads(raw)
    if stored.get("fingerprint") != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used with a different request",
                                  param="Idempotency-Key", code="idempotency_key_reused")
    headers = {**stored["headers"], "x-boltgate-idempotent-replay": "true",
               "x-boltgate-cost-usd": "0.000000", "x-boltgate-credits": "0"}
    return ImagesResponse(body=stored["body"], headers=headers)
