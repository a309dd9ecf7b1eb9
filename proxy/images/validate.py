"""An uploaded source image (image-to-image) is checked before any vendor sees it."""

from __future__ import annotations

import asyncio
import io

from PIL import Image, UnidentifiedImageError

from backends.base import sniff_format
from core.errors import InvalidRequest

MAX_INIT_IMAGE_BYTES = 20 * 1024 * 1024


def _decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False
    return True


async def validate_init_image(data: bytes) -> bytes:
    """``data`` when it is a decodable PNG, JPEG or WebP of at most 20 MB; else a clear 400."""
    if not data:
        raise InvalidRequest("The image file is empty", param="image")
    if len(data) > MAX_INIT_IMAGE_BYTES:
        raise InvalidRequest(f"The image is {len(data)} bytes; at most {MAX_INIT_IMAGE_BYTES} are accepted",
                             param="image", code="image_too_large")
    if sniff_format(data[:16]) is None:
        raise InvalidRequest("The image must be PNG, JPEG or WebP", param="image",
                             code="invalid_image_format")
    if not await asyncio.to_thread(_decodes, data):
        raise InvalidRequest("The image could not be decoded", param="image", code="invalid_image")
    return data
