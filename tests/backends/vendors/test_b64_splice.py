"""An OpenAI-style answer's base64 is found without copying it, or left to the ordinary parser."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _body(b64: bytes, *, key: bytes = b'"b64_json":') -> bytes:
    return b'{"created": 1, "data": [{' + key + b'"' + b64 + b'", "revised_prompt": null}]}'


@pytest.mark.parametrize("b64", [
    B64[:8] + b"\x01" + B64[8:],  # a control character
    B64[:8] + b"\n" + B64[8:],  # a line break, as an old MIME encoder writes them
    B64[:8] + b"\t" + B64[8:],
    B64[:8] + b" " + B64[8:],  # a space: JSON takes it, base64 does not
    B64[:8] + b"\x7f" + B64[8:],
    B64[:8] + "é".encode() + B64[8:],  # beyond ASCII
    B64[:8] + b"\xff" + B64[8:],  # not even UTF-8
    B64[:8] + b"\\" + B64[8:],  # a backslash
    B64[:8] + b"\\u0041" + B64[8:],  # an escape JSON would read as "A"
    B64[:8] + b'"' + B64[8:],  # a quote: the string ends early, the rest is not JSON
    B64[:8] + b"*" + B64[8:],  # just below "+"
    B64[:8] + b"{" + B64[8:],  # just above "z"
])
def test_a_base64_string_that_could_not_be_spliced_as_it_is_is_never_spliced(b64: bytes) -> None:
    assert VendorImages.decode(_body(b64)) is None


def test_bytes_that_are_not_json_text_are_refused_by_the_ordinary_parser_too() -> None:
    """What the fast path leaves is the vendor's failure, not a 500: a protocol error."""
    for hostile in (b"\x01", b"\n", b"\xff"):
        with pytest.raises(VendorProtocolError, match="body is not JSON"):
            parse_generation(HttpAnswer(200, {}, _body(B64[:8] + hostile + B64[8:])))


@pytest.mark.parametrize("body", [
    _body(B64)[:40],  # cut short inside the string: it has no end
    _body(B64)[:-3],  # cut short after it
    b'{"data": [{"b64_json": "' + B64 + b'"}], "data": [{"url": "https://cdn.example/x.png"}]}',
    b'{"data": [{"b64_json": "' + B64 + b'", "b64_json": "' + B64 + b'"}]}',  # one key twice
    b'{"meta": {"b64_json": "' + B64 + b'"}, "data": [{"url": "https://cdn.example/x.png"}]}',
    b'{"data": [{"url": "https://cdn.example/x.png"}], "b64_json": "' + B64 + b'"}',
    b'{"data": [{"b64_json": "' + B64 + b'" "' + B64 + b'"}]}',
    b'{"data": [{"b64_json" "' + B64 + b'"}]}',  # no colon
    b'{"data": [{"b64_json": ["' + B64 + b'"]}]}',
    b'["b64_json": "' + B64 + b'"]',
])
def test_a_string_found_anywhere_but_as_an_entrys_b64_json_is_left_to_the_ordinary_parser(body: bytes) -> None:
    assert VendorImages.decode(body) is None


def test_whitespace_between_the_tokens_is_json_as_any_other() -> None:
    body = b'{ "data" :\n [ {\t"b64_json" \r\n:  "' + B64 + b'" } , { "url" : "https://cdn.example/x.png" } ] }'
    found = VendorImages.decode(body)
    assert found is not None and [bytes(view) for view in found.b64_images] == [B64]
    assert found.image_urls == ["https://cdn.example/x.png"]


def test_the_key_as_a_value_elsewhere_does_not_confuse_the_search() -> None:
    body = (b'{"note": "b64_json", "data": [{"revised_prompt": "b64_json", "b64_json": "' + B64
            + b'"}, {"b64_json": null, "url": "https://cdn.example/x.png"}, {"b64_json": "+/z="}]}')
    found = VendorImages.decode(body)
    assert found is not None and [bytes(view) for view in found.b64_images] == [B64, b"+/z="]
    assert found.image_urls == ["https://cdn.example/x.png"]


def test_every_image_of_an_answer_is_its_own_view_in_order() -> None:
    images = [base64.b64encode(encode(fmt)) for fmt in ("PNG", "JPEG", "WEBP")] + [b""]
    body = orjson.dumps({"data": [{"b64_json": image.decode()} for image in images]})
    found = VendorImages.decode(body)
    assert found is not None and [bytes(view) for view in found.b64_images] == images
    assert all(view.obj is body for view in found.b64_images)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255),
       count=st.integers(min_value=1, max_value=3))
def test_a_body_spliced_is_json_whose_b64_json_values_are_the_views(position: int, byte: int, count: int) -> None:
    """Any one byte of a real answer changed: either the fast path steps aside, or the body is
    JSON, its entries' b64_json are exactly the views, and each can stand in a JSON string.

    (msgspec, as before, does not check the UTF-8 of a field it ignores, never spliced: so the
    oracle reads the body with such bytes replaced.)"""
    valid = orjson.dumps({"created": 1, "data": [{"b64_json": B64[:40].decode(), "revised_prompt": "a b"},
                                                  {"url": "https://cdn.example/x.png"}] * count})
    at = position % len(valid)
    body = valid[:at] + bytes([byte]) + valid[at + 1:]
    found = VendorImages.decode(body)
    if found is None:
        return
    data = orjson.loads(body.decode("utf-8", "replace"))["data"]
    assert [bytes(view) for view in found.b64_images] == [
        entry["b64_json"].encode() for entry in data if entry.get("b64_json") is not None]
    for view in found.b64_images:
        assert orjson.loads(b'"' + bytes(view) + b'"') == bytes(view).decode("ascii")
