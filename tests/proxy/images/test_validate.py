"""An uploaded source image must be a decodable PNG, JPEG or WebP of at most 20 MB."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest
from proxy.images.validate import MAX_INIT_IMAGE_BYTES, validate_init_image
from tests.backends.vendors.hostile import png_declaring
from tests.memory_peak import heap_peak
from tests.proxy.images.samples import encode


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_a_valid_image_passes_unchanged(fmt: str) -> None:
    data = encode(fmt, side=32)

    assert await validate_init_image(data) == data


@pytest.mark.parametrize(("data", "code"), [
    (b"", "invalid_request"),
    (b"this is not an image at all", "invalid_image_format"),
    (encode("GIF", side=16, mode="P"), "invalid_image_format"),
    (encode("PNG", side=64)[:200], "invalid_image"),
    (encode("JPEG", side=64)[:150], "invalid_image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "invalid_image"),
    (b"\x00" * (MAX_INIT_IMAGE_BYTES + 1), "image_too_large"),
], ids=["empty", "not-an-image", "gif", "truncated-png", "truncated-jpeg", "png-magic-only", "over-20mb"])
async def test_a_bad_upload_is_a_400_naming_the_image(data: bytes, code: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await validate_init_image(data)

    assert raised.value.status_code == 400
    assert raised.value.param == "image"
    assert raised.value.code == code


async def test_exactly_20_mb_is_not_refused_for_its_size() -> None:
    png = encode("PNG", side=16)
    padded = png + b"\x00" * (MAX_INIT_IMAGE_BYTES - len(png))

    assert await validate_init_image(padded) == padded


async def test_an_image_bomb_is_refused_from_its_header_before_any_decode() -> None:
    bomb = png_declaring(13_000, 13_000)  # 169 megapixels in a few kilobytes

    with heap_peak() as peak, pytest.raises(InvalidRequest) as raised:
        await validate_init_image(bomb)

    assert (raised.value.status_code, raised.value.code) == (400, "image_too_large")
    assert "13000x13000" in raised.value.message
    assert peak.mb < 10


async def test_the_pixel_cap_is_a_setting() -> None:
    with pytest.raises(InvalidRequest, match="too large"):
        await validate_init_image(encode("PNG", side=64), max_pixels=64 * 63)
    assert await validate_init_image(encode("PNG", side=64), max_pixels=64 * 64)
