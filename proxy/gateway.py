"""One image request, start to finish: route it, honour the format, store or inline the images.

Front doors (generations, edits) build an ``ImageRequest`` and hand it here; they never talk to
backends themselves.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from backends.base import GeneratedImage
from proxy.deadline import Deadline
from proxy.images.convert import to_format
from proxy.images.store import ImageStore
from proxy.metrics import GATEWAY_OVERHEAD_SECONDS, IMAGES
from proxy.request import ImageRequest
from proxy.routing.router import RoutedResult, Router
from proxy.state.base import StateStore


@dataclass(slots=True)
class ImagesResponse:
    """The OpenAI-shaped body and the headers that say how the request was served."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Gateway:
    def __init__(self, router: Router, images: ImageStore, state: StateStore, *, deadline_s: float,
                 public_base_url: str | None = None) -> None:
        self.router = router
        self.state = state
        self.images = images
        self.deadline_s = deadline_s
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    async def generate(self, request: ImageRequest, *, base_url: str) -> ImagesResponse:
        started = time.monotonic()
        routed = await self.router.generate(request, Deadline(self.deadline_s))
        images = await asyncio.gather(
            *(to_format(image, request.output_format) for image in routed.result.images[: request.n])
        )
        data = await self._render(images, request, self.public_base_url or base_url.rstrip("/"))
        IMAGES.labels(routed.route.vendor).inc(len(images))
        GATEWAY_OVERHEAD_SECONDS.observe(max(0.0, time.monotonic() - started - routed.backend_seconds))
        return ImagesResponse(
            body={
                "created": int(time.time()),
                "data": data,
                "output_format": request.output_format,
                "size": request.size,
                "seed": request.seed,
            },
            headers=served_headers(routed, request),
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
    return {
        "x-boltgate-backend": routed.route.vendor,
        "x-boltgate-region": routed.route.region,
        "x-boltgate-attempts": str(len(routed.attempts)),
        "x-boltgate-seed": str(request.seed),
    }
