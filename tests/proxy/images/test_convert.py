"""The requested output format is honoured, converting only when the image is in another one."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from backends.base import GeneratedImage
from core.errors import UnusableOutput
from proxy.images.convert import to_format
from tests.backends.vendors.hostile import corrupt_png, png_declaring
from tests.proxy.images.samples import encode


async def test_an_image_already_in_the_format_is_returned_untouched_without_decoding() -> None:
    png = encode("PNG")
    image = GeneratedImage(b64=GeneratedImage(data=png).b64)

    same = await to_format(image, "png")

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

    converted = await to_format(original, target)  # type: ignore[arg-type]

    assert converted.format == target
    with Image.open(io.BytesIO(converted.data)) as decoded:
        assert decoded.format == pillow_name
        assert decoded.size == (32, 32)


async def test_conversion_keeps_the_picture() -> None:
    red = GeneratedImage(data=encode("PNG", side=16, flat=(200, 30, 30)))

    converted = await to_format(red, "jpeg")

    with Image.open(io.BytesIO(converted.data)) as decoded:
        r, g, b = decoded.convert("RGB").getpixel((8, 8))  # type: ignore[misc]
    assert abs(r - 200) <= 6 and abs(g - 30) <= 6 and abs(b - 30) <= 6


@pytest.mark.parametrize("data", [corrupt_png(), png_declaring(50_000, 50_000)], ids=["corrupt", "bomb"])
async def test_an_image_that_cannot_be_decoded_or_is_a_bomb_is_unusable(data: bytes) -> None:
    with pytest.raises(UnusableOutput):
        await to_format(GeneratedImage(data=data), "jpeg")


async def test_an_image_that_does_not_decode_is_unusable_output_never_a_crash() -> None:
    png = encode("PNG")
    corrupt = GeneratedImage(data=png[:40] + bytes(len(png) - 52) + png[-12:])

    with pytest.raises(UnusableOutput):
        await to_format(corrupt, "jpeg")
