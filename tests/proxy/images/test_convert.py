"""The requested output format is honoured, converting only when the image is in another one."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from backends.base import GeneratedImage
from core.errors import UnusableOutput
from core.image_header import DEFAULT_MAX_PIXELS
from proxy.images.convert import to_format
from tests.backends.vendors.hostile import corrupt_png, png_declaring
from tests.proxy.images.samples import encode


async def test_an_image_already_in_the_format_is_returned_untouched_without_decoding() -> None:
    png = encode("PNG")
    image = GeneratedImage(b64=GeneratedImage(data=png).b64)

    same = await to_format(image, "png", max_pixels=DEFAULT_MAX_PIXELS)

    assert same is image
    assert image._data is None  # the base64 text was never decoded


@pytest.mark.parametrize(("source", "mode", "target", "pillow_name"), [
    ("PNG", "RGB", "jpeg", "JPEG"),
    ("PNG", "RGBA", "jpeg", "JPEG"),
    ("PNG", "P", "jpeg", "JPEG"),
    ("PNG", "RGB", "webp", "WEBP"),
    ("PNG", "RGBA", "webp", "WEBP"),
    ("JPEG", "RGB", "png", "PNG"),
    ("WEBP", "RGB", "jpeg", "JPEG"),
])
async def test_an_image_in_another_format_is_converted(source: str, mode: str, target: str, pillow_name: str) -> None:
    original = GeneratedImage(data=encode(source, mode=mode, side=32))

    converted = await to_format(original, target, max_pixels=DEFAULT_MAX_PIXELS)  # type: ignore[arg-type]

    assert converted.format == target
    with Image.open(io.BytesIO(converted.data)) as decoded:
        assert decoded.format == pillow_name
        assert decoded.size == (32, 32)


async def test_conversion_keeps_the_picture() -> None:
    red = GeneratedImage(data=encode("PNG", side=16, flat=(200, 30, 30)))

    converted = await to_format(red, "jpeg", max_pixels=DEFAULT_MAX_PIXELS)

    with Image.open(io.BytesIO(converted.data)) as decoded:
        r, g, b = decoded.convert("RGB").getpixel((8, 8))  # type: ignore[misc]
    assert abs(r - 200) <= 6 and abs(g - 30) <= 6 and abs(b - 30) <= 6


@pytest.mark.parametrize("data", [corrupt_png(), png_declaring(50_000, 50_000)], ids=["corrupt", "bomb"])
async def test_an_image_that_cannot_be_decoded_or_is_a_bomb_is_unusable(data: bytes) -> None:
    with pytest.raises(UnusableOutput):
        await to_format(GeneratedImage(data=data), "jpeg", max_pixels=DEFAULT_MAX_PIXELS)


async def test_an_image_that_does_not_decode_is_unusable_output_never_a_crash() -> None:
    png = encode("PNG")
    corrupt = GeneratedImage(data=png[:40] + bytes(len(png) - 52) + png[-12:])

    with pytest.raises(UnusableOutput):
        await to_format(corrupt, "jpeg", max_pixels=DEFAULT_MAX_PIXELS)


WIDE_FLAT = 4097
"""A side past the default cap: 4097 x 4097 pixels is just over 4096 x 4096."""


def grey_square(side: int) -> GeneratedImage:
    """A flat greyscale PNG (a few kB even past the default cap; one byte a pixel decoded)."""
    return GeneratedImage(data=encode("PNG", side=side, mode="L", flat=(128,)))


async def test_an_image_past_the_default_cap_converts_when_the_operators_cap_allows_it() -> None:
    large = grey_square(WIDE_FLAT)
    with pytest.raises(UnusableOutput, match="more than"):
        await to_format(large, "jpeg", max_pixels=DEFAULT_MAX_PIXELS)

    converted = await to_format(large, "jpeg", max_pixels=WIDE_FLAT * WIDE_FLAT)

    with Image.open(io.BytesIO(converted.data)) as decoded:
        assert (decoded.format, decoded.size) == ("JPEG", (WIDE_FLAT, WIDE_FLAT))


async def test_an_image_past_a_lowered_cap_is_unusable_not_decoded() -> None:
    small = grey_square(64)
    assert (await to_format(small, "jpeg", max_pixels=64 * 64)).format == "jpeg"

    with pytest.raises(UnusableOutput, match="more than 4095 pixels"):
        await to_format(small, "jpeg", max_pixels=64 * 64 - 1)
