"""Fetching the image URLs a vendor answers with, bounded in every direction.

Each URL and every redirect hop passes ``OutboundPolicy.check`` (scheme, credentials, address);
redirects are followed by hand up to ``max_redirects``; the body is streamed and abandoned past
``max_image_bytes`` (counted after decompression, so a gzip bomb stops at the cap); the bytes must
be a PNG, JPEG or WebP whose header declares at most ``max_image_pixels`` and whose structure
checks out. No header is sent with the fetch: the vendor's key never leaves for an output host.
Every refusal is a ``VendorProtocolError``: the route fails over and the client is never charged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin

from aiohttp import ClientConnectorError

from backends.base import GeneratedImage
from backends.vendors.http_client import HttpClient
from backends.vendors.url_policy import OutboundPolicy
from core.deadline import Deadline
from core.errors import ImageRefused, UnsafeVendorUrl, VendorProtocolError, VendorUnavailable
from core.image_header import DEFAULT_MAX_PIXELS, check_structure

MiB = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How much a vendor may make the gateway read (the settings' ``outbound`` section)."""

    max_image_bytes: int = 20 * MiB
    """One output image; a 1536x1536 PNG is under 7 MB."""
    max_answer_bytes: int = 64 * MiB
    """One API answer (JSON with up to four base64 images)."""
    max_redirects: int = 3
    max_image_pixels: int = DEFAULT_MAX_PIXELS


class OutputFetcher:
    """Fetches one vendor route's output URLs under its policy and limits."""

    def __init__(self, http: HttpClient, policy: OutboundPolicy, limits: FetchLimits) -> None:
        self._http = http
        self._policy = policy
        self._limits = limits

    async def fetch(self, url: str, budget: Deadline) -> GeneratedImage:
        for _ in range(self._limits.max_redirects + 1):
            self._policy.check(url)
            try:
                answer = await self._http.request("GET", url, {}, None, budget.remaining(),
                                                  max_bytes=self._limits.max_image_bytes)
            except VendorUnavailable as exc:
                if _refused_address(exc):
                    raise UnsafeVendorUrl(f"output URL {_origin(url)} resolves only to non-public addresses") from exc
                raise
            location = answer.headers.get("location")
            if answer.status in _REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if answer.status != 200:
                raise VendorProtocolError(f"output URL answered {answer.status}", status=answer.status)
            return await self._image(answer.body)
        raise UnsafeVendorUrl(f"output URL redirected more than {self._limits.max_redirects} times")

    async def _image(self, body: bytes) -> GeneratedImage:
        image = GeneratedImage(data=body)  # refuses what is not PNG, JPEG or WebP
        try:
            await asyncio.to_thread(check_structure, body, self._limits.max_image_pixels)
        except ImageRefused as exc:
            raise VendorProtocolError(f"output image refused: {exc}") from exc
        return image


def _refused_address(error: VendorUnavailable) -> bool:
    cause = error.__cause__
    return isinstance(cause, ClientConnectorError) and isinstance(cause.os_error, PermissionError)


def _origin(url: str) -> str:
    return "/".join(url.split("/", 3)[:3])
