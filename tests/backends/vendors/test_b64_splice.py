"""An OpenAI-style answer's base64 is found without copying it, or left to the ordinary parser."""

from __future__ import annotations

import base64

import orjson
import pytest

from backends.base import GeneratedImage
from backends.vendors.b64_splice import VendorImages
from backends.vendors.messages import HttpAnswer
from backends.vendors.openai_style import parse_generation
from core.errors import VendorProtocolError
from tests.backends.vendors.test_image_check import encode

PNG = encode("PNG", (64, 48))
B64 = base64.b64encode(PNG)


def test_the_base64_is_a_view_of_the_vendors_body_that_reads_as_the_image() -> None:
    body = orjson.dumps({"created": 1, "data": [{"b64_json": B64.decode(), "revised_prompt": None},
                                                 {"url": "https://cdn.example/x.png"}]})
    found = VendorImages.decode(body)
    assert found is not None
    [view] = found.b64_images
    assert isinstance(view, memoryview) and bytes(view) == B64
    assert found.image_urls == ["https://cdn.example/x.png"]
    image = GeneratedImage(b64=view)
    assert image.format == "png" and len(image) == len(PNG)
    assert image.head(16) == PNG[:16] and image.tail(16) == PNG[-16:] and image.data == PNG
    assert image.b64 == B64.decode() and image.b64_ascii is view


@pytest.mark.parametrize("body", [
    b'{"data": [{"b64_json": "iVBO\\/w=="}]}',  # an escape: the token is not the text
    b'{"data": [{"b64_json": 12}]}',
    b'{"data": [{"revised_prompt": "x"}]}',
    b'{"data": "none"}',
    b'{"data": [{"b64_json": "abc"}',  # cut short
    b"not json",
])
def test_anything_unusual_is_left_to_the_ordinary_parser(body: bytes) -> None:
    assert VendorImages.decode(body) is None


def test_the_vendor_parser_keeps_its_messages_for_what_the_fast_path_leaves() -> None:
    with pytest.raises(VendorProtocolError, match="image entry without b64_json or url"):
        parse_generation(HttpAnswer(200, {}, b'{"data": [{"revised_prompt": "x"}]}'))
    escaped = orjson.dumps({"data": [{"b64_json": B64.decode()}]}).replace(b"/", b"\\/")
    output = parse_generation(HttpAnswer(200, {}, escaped))
    assert output.b64_images == [B64.decode()]  # decoded the ordinary way, escapes resolved
