"""A vendor image that does not decode, or declares absurd dimensions, is unusable output: it fails
over and is never delivered (nor charged), whether it came as bytes or base64."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Callable

import pytest
import respx
from PIL import Image

from backends.base import GeneratedImage
from backends.vendors.backend import VendorBackend
from backends.vendors.image_check import check_image
from backends.vendors.output_fetch import FetchLimits
from backends.vendors.registry import VENDOR_SPECS
from core.deadline import Deadline
from core.errors import UnusableOutput
from core.image_header import DEFAULT_MAX_PIXELS
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]


def encode(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, format=fmt)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG header for a huge image, and a tiny (valid-CRC) body: a bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def both(data: bytes) -> list[GeneratedImage]:
    return [GeneratedImage(data=data), GeneratedImage(b64=base64.b64encode(data).decode())]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_whole_image_passes(fmt: str) -> None:
    for image in both(encode(fmt)):
        check_image(image, "v", DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_truncated_image_is_unusable(fmt: str) -> None:
    data = encode(fmt, (256, 256))
    for image in both(data[: len(data) * 2 // 3]):
        with pytest.raises(UnusableOutput, match=r"cut short|header"):
            check_image(image, "v", DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize("magic", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"])
def test_garbage_behind_an_image_signature_is_unusable(magic: bytes) -> None:
    for image in both(magic + b"this is not an image at all" * 10):
        with pytest.raises(UnusableOutput):
            check_image(image, "v", DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize(("width", "height"), [(50_000, 50_000), (5000, 4000), (0, 100), (100, 0)])
def test_absurd_declared_dimensions_are_unusable_before_any_decode(width: int, height: int) -> None:
    for image in both(png_declaring(width, height)):
        with pytest.raises(UnusableOutput):
            check_image(image, "v", DEFAULT_MAX_PIXELS)


def test_the_pixel_cap_is_the_callers_in_both_directions() -> None:
    """The cap is the setting the caller passes, not a fixed 4096 a side: below it a small image
    is refused, above it a wide one passes."""
    for image in both(encode("PNG", (512, 512))):
        check_image(image, "v", 512 * 512)
        with pytest.raises(UnusableOutput, match=r"512x512 pixels; at most 262143 pixels"):
            check_image(image, "v", 512 * 512 - 1)
    for image in both(png_declaring(6000, 3000)):
        check_image(image, "v", 6000 * 3000)
        with pytest.raises(UnusableOutput):
            check_image(image, "v", 6000 * 3000 - 1)


def encoded_answer(image: bytes) -> dict[str, object]:
    return {"created": 1, "data": [{"b64_json": base64.b64encode(image).decode(), "revised_prompt": None}]}


async def test_a_vendor_image_over_the_routes_max_image_pixels_fails_over_billed(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    """A 512x512 image is far under the default cap, but over the cap this route was given."""
    vendor_api.post("/v1/images/generations").respond(200, json=encoded_answer(encode("PNG", (512, 512))))
    backend = make_backend(VENDOR_SPECS["callmissed"], limits=FetchLimits(max_image_pixels=256 * 256))
    with pytest.raises(UnusableOutput, match="512x512") as caught:
        await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.billed and caught.value.failover


async def test_a_route_allowed_more_pixels_accepts_an_image_past_4096_a_side(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post("/v1/images/generations").respond(200, json=encoded_answer(png_declaring(6000, 3000)))
    backend = make_backend(VENDOR_SPECS["callmissed"], limits=FetchLimits(max_image_pixels=6000 * 3000))
    result = await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert len(result.images) == 1


def test_base64_cut_mid_group_is_unusable() -> None:
    text = base64.b64encode(encode("PNG")).decode()
    with pytest.raises(UnusableOutput):
        check_image(GeneratedImage(b64=text[:-3]), "v", DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize(
    "image", [png_declaring(50_000, 50_000), encode("PNG", (256, 256))[:400]], ids=["bomb", "truncated"]
)
async def test_a_vendor_answering_a_broken_image_fails_over_billed(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, image: bytes
) -> None:
    body = {"created": 1, "data": [{"b64_json": base64.b64encode(image).decode(), "revised_prompt": None}]}
    vendor_api.post("/v1/images/generations").respond(200, json=body)
    with pytest.raises(UnusableOutput) as caught:
        await make_backend(VENDOR_SPECS["callmissed"]).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.billed and caught.value.failover and not caught.value.retryable


def test_a_jpeg_whose_size_comes_after_a_large_icc_profile_passes() -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(out, format="JPEG", icc_profile=bytes(60_000))
    for image in both(out.getvalue()):
        check_image(image, "v", DEFAULT_MAX_PIXELS)


def test_a_png_whose_header_checksum_is_wrong_is_unusable() -> None:
    """The IHDR read without Pillow is trusted only with a good checksum, as Pillow trusts it."""
    data = bytearray(encode("PNG"))
    data[29] ^= 0xFF  # the IHDR chunk's CRC
    for image in both(bytes(data)):
        with pytest.raises(UnusableOutput, match="header"):
            check_image(image, "v", DEFAULT_MAX_PIXELS)
