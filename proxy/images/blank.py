"""A blank (black or single-colour) image is a safety filter's answer, not a success.

Decoding every image would cost the gateway real CPU, so only images that compress
suspiciously well (a flat image is a few bytes per thousand pixels) are decoded, off the event
loop, to confirm.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from backends.base import BackendResult, GeneratedImage
from proxy.errors import ContentFiltered
from proxy.request import ImageRequest

SUSPICIOUS_BYTES_PER_PIXEL = 0.02
SUSPICIOUS_OVERHEAD_BYTES = 4096
"""Headers that do not shrink with a flat picture: a black 256x256 JPEG is 1.6 kB, mostly tables."""
FLAT_RANGE = 4
"""A channel whose values span at most this is flat."""


def is_flat(image: GeneratedImage) -> bool:
    with Image.open(io.BytesIO(image.data)) as decoded:
        extrema = decoded.convert("RGB").getextrema()
    return all(high - low <= FLAT_RANGE for low, high in extrema)  # type: ignore[misc]


async def reject_blank_images(result: BackendResult, request: ImageRequest, vendor: str) -> None:
    pixels = request.width * request.height
    limit = SUSPICIOUS_OVERHEAD_BYTES + pixels * SUSPICIOUS_BYTES_PER_PIXEL
    suspects = [image for image in result.images if len(image) < limit]
    for image in suspects:
        if await asyncio.to_thread(is_flat, image):
            raise ContentFiltered(f"{vendor} answered a blank image (a safety filter's answer)")
