"""An uploaded source image (image-to-image) is checked before any vendor sees it.

Its declared size is read from the header first: a 500 KB PNG declaring 13000x13000 would take
700 MB to decode, so anything over the pixel cap is refused before a single pixel is decoded.
"""

from __future__ import annotations

import asyncio

from backends.base import sniff_format
from core.errors import ImageRefused, InvalidRequest
from core.image_header import DEFAULT_MAX_PIXELS, decoded

MAX_INIT_IMAGE_BYTES = 20 * 1024 * 1024


def _decode(data: bytes, max_pixels: int) -> None:
    with decoded(data, max_pixels):
        pass


async def validate_init_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """``data`` when it is a decodable PNG, JPEG or WebP of at most 20 MB and ``max_pixels``;
    else a clear 400."""
    if not data:
        raise InvalidRequest("The image file is empty", param="image")
    if len(data) > MAX_INIT_IMAGE_BYTES:
        raise InvalidRequest(f"The image is {len(data)} bytes; at most {MAX_INIT_IMAGE_BYTES} are accepted",
                             param="image", code="image_too_large")
    if sniff_format(data[:16]) is None:
        raise InvalidRequest("The image must be PNG, JPEG or WebP", param="image",
                             code="invalid_image_format")
    try:
        await asyncio.to_thread(_decode, data, max_pixels)
    except ImageRefused as refused:
        message = ("The image could not be decoded" if refused.code == "invalid_image"
                   else f"The image is too large: {refused}")
        raise InvalidRequest(message, param="image", code=refused.code) from refused
    return data
