"""Pixels out in the asked format, and the init image in at the asked size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from backends.base import sniff_format
from backends.local.encoding import decode_init_image, encode_image
from core.errors import InvalidRequest


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_encodes_in_the_asked_format(fmt: str) -> None:
    data = encode_image(Image.new("RGB", (16, 16), (10, 200, 30)), fmt)  # type: ignore[arg-type]
    assert sniff_format(data[:16]) == fmt


def test_encoding_is_deterministic() -> None:
    image = Image.effect_noise((32, 32), 40).convert("RGB")
    assert encode_image(image, "png") == encode_image(image, "png")


def test_decodes_the_init_image_to_rgb_at_the_requested_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (300, 200), (1, 2, 3, 255)).save(buffer, format="PNG")
    image = decode_init_image(buffer.getvalue(), 256, 264)
    assert (image.mode, image.size) == ("RGB", (256, 264))


def test_an_unreadable_init_image_is_the_client_s_fault() -> None:
    with pytest.raises(InvalidRequest) as raised:
        decode_init_image(b"not an image", 256, 256)
    assert raised.value.param == "image"
    assert raised.value.status_code == 400
