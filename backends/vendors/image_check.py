"""Is a delivered image an image? Checked at the vendor boundary, without decoding its pixels.

A vendor image that starts like a PNG or JPEG but is cut short or corrupt, or that declares
absurd dimensions (a decompression bomb), must fail over like any unreadable answer, never reach
the client and never be charged. Decoding every image would cost the gateway real CPU (and undo
the base64 pass-through), so the check reads only what it needs: the header, through Pillow,
for the format and dimensions, and the last bytes for the format's end marker, which a
truncated file lacks. A PNG of the plain shape has its size read from its IHDR chunk without
Pillow (``core.image_header.plain_png_size``, to Pillow's answer: 4 us a check instead of 36).
The pixel cap is the caller's (the settings' ``outbound.max_image_pixels``, carried in the
route's ``FetchLimits``), the same cap a fetched output URL is held to.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from backends.base import GeneratedImage
from core.errors import UnusableOutput, VendorProtocolError
from core.image_header import PNG_HEADER_BYTES, plain_png_size

HEADER_READS = (4 * 1024, 256 * 1024)
"""How much of the image Pillow gets to find its size: 4 KB is enough for a PNG, WebP or a plain
JPEG; a JPEG's EXIF and ICC segments can push its size further, up to the second read."""

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def check_image(image: GeneratedImage, vendor: str, max_pixels: int) -> None:
    """Raise ``UnusableOutput`` unless ``image`` has a readable header, declares at least one and
    at most ``max_pixels`` pixels (width x height), and has an end."""
    try:
        tail = image.tail(16)
        width, height, head = _dimensions(image, vendor)
    except VendorProtocolError as exc:
        raise UnusableOutput(f"{vendor} image: {exc.message}") from exc
    if width < 1 or height < 1 or width * height > max_pixels:
        raise UnusableOutput(f"{vendor} image declares {width}x{height} pixels; at most {max_pixels} pixels")
    if not _ends_well(image, head, tail):
        raise UnusableOutput(f"{vendor} {image.format.upper()} image is cut short or corrupt")


def _dimensions(image: GeneratedImage, vendor: str) -> tuple[int, int, bytes]:
    """The declared width and height, and the head they were read from."""
    if image.format == "png":
        head = image.head(PNG_HEADER_BYTES)
        plain = plain_png_size(head)
        if plain is not None:
            return *plain, head
    problem: Exception | None = None
    for size in HEADER_READS:
        head = image.head(size)
        try:
            with Image.open(io.BytesIO(head), formats=[_PILLOW_FORMATS[image.format]]) as opened:
                width, height = opened.size
            return width, height, head
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            problem = exc
        if len(head) < size:
            break  # the whole image was read: more would not help
    raise UnusableOutput(f"{vendor} {image.format.upper()} image has no readable header: {problem}")


def _ends_well(image: GeneratedImage, head: bytes, tail: bytes) -> bool:
    if image.format == "png":
        return tail.endswith(_PNG_END)
    if image.format == "jpeg":
        return tail.endswith(_JPEG_END)
    # WebP: the RIFF header states the file's length.
    return int.from_bytes(head[4:8], "little") + 8 == len(image)
