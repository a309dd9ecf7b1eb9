"""The backend interface: images held as bytes or base64 (converted lazily), and capabilities."""

from __future__ import annotations

import base64

import pytest

from backends.base import Capabilities, GeneratedImage, sniff_format
from core.errors import VendorProtocolError
from core.request import ImageRequest
from tests.proxy.images.samples import encode

PNG = encode("PNG", side=16)
JPEG = encode("JPEG", side=16)
WEBP = encode("WEBP", side=16)


@pytest.mark.parametrize(("data", "fmt"), [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp")])
def test_the_format_is_sniffed_from_the_first_bytes(data: bytes, fmt: str) -> None:
    assert sniff_format(data[:16]) == fmt


@pytest.mark.parametrize("head", [b"", b"GIF89a", b"BM\x00\x00", b"RIFF\x00\x00\x00\x00WAVE", b"<html>"])
def test_formats_we_do_not_serve_sniff_as_none(head: bytes) -> None:
    assert sniff_format(head) is None


@pytest.mark.parametrize(("data", "fmt"), [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp")])
def test_an_image_from_bytes_knows_its_format_and_size(data: bytes, fmt: str) -> None:
    image = GeneratedImage(data=data)

    assert image.format == fmt
    assert len(image) == len(data)
    assert image.data is data


@pytest.mark.parametrize(("data", "fmt"), [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp")])
def test_base64_passes_through_without_a_decode(data: bytes, fmt: str) -> None:
    text = base64.b64encode(data).decode()

    image = GeneratedImage(b64=text)

    assert image.format == fmt  # sniffed from the head of the text alone
    assert image.b64 is text
    assert image._data is None


def test_base64_decodes_once_when_the_bytes_are_needed() -> None:
    image = GeneratedImage(b64=base64.b64encode(PNG).decode())

    assert image.data == PNG
    assert image.data is image.data


def test_bytes_encode_to_base64_on_demand() -> None:
    image = GeneratedImage(data=PNG)

    assert base64.b64decode(image.b64) == PNG


def test_the_length_of_a_base64_image_is_counted_without_decoding() -> None:
    for data in (PNG, PNG + b"x", PNG + b"xy"):  # every padding
        image = GeneratedImage(b64=base64.b64encode(data).decode())
        assert len(image) == len(data)
        assert image._data is None


def test_the_head_and_tail_of_a_base64_image_decode_only_what_they_need() -> None:
    for data in (PNG, PNG + b"x", PNG + b"xy"):
        image = GeneratedImage(b64=base64.b64encode(data).decode())
        assert image.head(10) == data[:10] and image.tail(16) == data[-16:]
        assert image._data is None


@pytest.mark.parametrize("kwargs", [
    {"data": b"GIF89a" + b"\x00" * 32},
    {"data": b""},
    {"b64": base64.b64encode(b"GIF89a" + b"\x00" * 32).decode()},
    {"b64": "!!!! not base64 at all !!!!"},
    {"b64": "iVBORw0"},
])
def test_an_image_we_cannot_serve_is_a_vendor_protocol_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(VendorProtocolError) as raised:
        GeneratedImage(**kwargs)  # type: ignore[arg-type]
    assert raised.value.retryable


def test_an_image_needs_bytes_or_base64() -> None:
    with pytest.raises(ValueError):
        GeneratedImage()


def request(**fields: object) -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a fox", "seed": 3, **fields})


def test_default_capabilities_serve_a_default_request() -> None:
    assert Capabilities().refusal(request()) is None


def test_a_field_the_client_did_not_set_is_never_a_reason_to_skip() -> None:
    """The gateway draws a seed and defaults steps and guidance; only what the client asked for counts."""
    unable = Capabilities(seed=False, negative_prompt=False, guidance=False, steps=False)
    assert unable.refusal(ImageRequest(prompt="a fox")) is None


@pytest.mark.parametrize(("capabilities", "fields", "refusal"), [
    (Capabilities(max_steps=8), {"steps": 9}, "steps 9 > 8"),
    (Capabilities(max_steps=8), {"steps": 8}, None),
    (Capabilities(fixed_steps=frozenset({1, 2, 4, 8})), {"steps": 6}, "steps 6 not in [1, 2, 4, 8]"),
    (Capabilities(fixed_steps=frozenset({1, 2, 4, 8})), {"steps": 2}, None),
    (Capabilities(max_side=1024), {"width": 1024, "height": 1032}, "size 1024x1032 outside 256-1024"),
    (Capabilities(max_side=1024), {"width": 1024, "height": 1024}, None),
    (Capabilities(min_side=512), {"width": 504, "height": 512}, "size 504x512 outside 512-1536"),
    (Capabilities(max_n=1), {"n": 2}, "n 2 > 1"),
    (Capabilities(max_n=1), {"n": 1}, None),
    (Capabilities(image_to_image=False), {"init_image": PNG}, "no image-to-image"),
    (Capabilities(image_to_image=True), {"init_image": PNG}, None),
    (Capabilities(seed=False), {"seed": 3}, "no seed field"),
    (Capabilities(negative_prompt=False), {"negative_prompt": "blurry"}, "no negative_prompt field"),
    (Capabilities(guidance=False), {"guidance_scale": 0.0}, "no guidance field"),
    (Capabilities(steps=False), {"steps": 4}, "no steps field (the vendor picks its own)"),
    (Capabilities(steps=False, max_steps=4), {}, None),
    (Capabilities(negative_prompt=False), {"negative_prompt": ""}, None),
    (Capabilities(negative_prompt=True), {"negative_prompt": "blurry"}, None),
])
def test_capabilities_say_why_a_request_cannot_be_served(
    capabilities: Capabilities, fields: dict[str, object], refusal: str | None
) -> None:
    assert capabilities.refusal(request(**fields)) == refusal
