"""A blank (black or single-colour) image is a safety filter's answer, not a success.

Decoding every image would cost the gateway real CPU, so only images that compress
suspiciously well (a flat image is a few bytes per thousand pixels) are decoded, off the event
loop, to confirm, and only within the caller's pixel cap (the settings'
``outbound.max_image_pixels``, the cap the backends hold a vendor's image to).
"""

from __future__ import annotations

import asyncio

from PIL import Image, UnidentifiedImageError

from backends.base import BackendResult, GeneratedImage
from core.errors import ContentFiltered, ImageRefused, UnusableOutput
from core.image_header import decoded
from core.request import ImageRequest

SUSPICION_LIMITS: dict[str, tuple[int, float]] = {
    "png": (1024, 0.006),
    "webp": (1024, 0.006),
    "jpeg": (4096, 0.03),
}
"""Per format, (fixed bytes, bytes per pixel) under which an image is decoded to check flatness.

A flat PNG is about 0.003-0.004 bytes per pixel (270 B at 256x256, 3.1 kB at 1024x1024), a
flat JPEG 0.016-0.025 plus its tables (1.6 kB at 256x256); a real SDXL image is 100 to 1000
times larger, so real images are never decoded here."""
FLAT_RANGE = 4
"""A channel whose values span at most this is flat."""


def is_flat(image: GeneratedImage, max_pixels: int) -> bool:
    """Decoded within ``max_pixels`` (``ImageRefused`` past it or when it does not decode)."""
    with decoded(image.data, max_pixels) as opened:
        extrema = opened.convert("RGB").getextrema()
    return all(high - low <= FLAT_RANGE for low, high in extrema)  # type: ignore[misc]


async def reject_blank_images(result: BackendResult, request: ImageRequest, vendor: str, *,
                              max_pixels: int) -> None:
    """A blank image is the vendor's safety filter, and the vendor billed it: a gateway loss.
    A suspect declaring more than ``max_pixels`` pixels is unusable, never decoded."""
    pixels = request.width * request.height
    suspects = [image for image in result.images if len(image) < _limit(image.format, pixels)]
    for image in suspects:
        try:
            flat = await asyncio.to_thread(is_flat, image, max_pixels)
        except (ImageRefused, UnidentifiedImageError, OSError, ValueError, SyntaxError,
                Image.DecompressionBombError) as exc:
            raise UnusableOutput(f"{vendor} answered an image that does not decode: {exc}",
                                 run_seconds=result.run_seconds, vendor_cost_usd=result.vendor_cost_usd) from exc
        if flat:
            raise ContentFiltered(f"{vendor} answered a blank image (a safety filter's answer)", billed=True,
                                  run_seconds=result.run_seconds, vendor_cost_usd=result.vendor_cost_usd)


def _limit(fmt: str, pixels: int) -> float:
    fixed, per_pixel = SUSPICION_LIMITS[fmt]
    return fixed + pixels * per_pixel
