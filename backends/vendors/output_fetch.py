"""Fetching the image URLs a vendor answers with, bounded in every direction.

The route's HTTP client carries the outbound policy (``url_policy``): each URL and every redirect
hop is checked (scheme, credentials, address), redirects stop after ``max_redirects``, and the
client's resolver connects only to allowed addresses. Here the fetch adds its own byte cap,
``max_image_bytes``, counted after decompression while the body streams (a flood or a gzip bomb
stops at the cap); the bytes must then be a PNG, JPEG or WebP whose header declares at most
``max_image_pixels`` and whose structure checks out (``core.image_header``). No header is sent:
the vendor's key never leaves for an output host. Every refusal is a ``BackendError``; after a
billed answer the backend turns it into ``UnusableOutput``: the route fails over, the client is
never charged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from backends.base import GeneratedImage
from backends.vendors.http import HttpClient
from backends.vendors.http.base import MAX_ANSWER_BYTES
from core.deadline import Deadline
from core.errors import ImageRefused, VendorProtocolError
from core.image_header import DEFAULT_MAX_PIXELS, check_structure

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How much a vendor may make the gateway read (the settings' ``outbound`` section)."""

    max_image_bytes: int = 20 * MiB
    """One output image; a 1536x1536 PNG is under 7 MB."""
    max_answer_bytes: int = MAX_ANSWER_BYTES
    """One API answer (JSON with up to ten base64 images)."""
    max_redirects: int = 3
    """CDNs and signed-URL services redirect once or twice (the HTTP clients' own default is wider)."""
    max_image_pixels: int = DEFAULT_MAX_PIXELS


async def fetch_output(http: HttpClient, url: str, budget: Deadline, limits: FetchLimits) -> GeneratedImage:
    """One output image: fetched under the client's policy and ``limits``, checked before use."""
    answer = await http.request("GET", url, {}, None, budget.remaining(), follow_redirects=True,
                                max_bytes=limits.max_image_bytes)
    if answer.status != 200:
        raise VendorProtocolError(f"output URL answered {answer.status}", status=answer.status)
    data = bytes(answer.body)  # the image's own: a buffer the client lent is free for its next read
    image = GeneratedImage(data=data)  # refuses what is not PNG, JPEG or WebP
    try:
        await asyncio.to_thread(check_structure, data, limits.max_image_pixels)
    except ImageRefused as exc:
        raise VendorProtocolError(f"output image refused: {exc}") from exc
    return image
