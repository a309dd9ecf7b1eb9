"""The images answer with the vendor's base64 spliced in is the JSON orjson would write."""

from __future__ import annotations

import orjson

from proxy.images.body import images_body, images_body_parts


def test_a_spliced_body_is_the_same_json_in_the_same_order() -> None:
    b64 = b"iVBORw0KGgoAAAANSUhEUg+/=="
    vendor_answer = b'{"data":[{"b64_json":"' + b64 + b'"}]}'
    view = memoryview(vendor_answer)[len(b'{"data":[{"b64_json":"'):-len(b'"}]}')]
    body = {"created": 5, "data": [{"b64_json": view, "revised_prompt": 'say "hi"\n'},
                                   {"b64_json": "QUJD", "revised_prompt": None}],
            "output_format": "png", "billing": {"cost_usd": "0.01"}}
    text = images_body(body)
    as_text = {**body, "data": [{**body["data"][0], "b64_json": b64.decode()}, body["data"][1]]}
    assert text == orjson.dumps(as_text)  # byte for byte, key order included
    assert b64 in text


def test_a_body_without_views_is_plain_orjson() -> None:
    body = {"created": 1, "data": [{"url": "https://x/y.png"}]}
    assert images_body(body) == orjson.dumps(body)



def test_the_parts_are_the_body_with_each_base64_the_vendors_own_view() -> None:
    vendor_answer = b'{"data":[{"b64_json":"QUJD"},{"b64_json":"REVG"}]}'
    first, second = (memoryview(vendor_answer)[at:at + 4] for at in (22, 42))
    body = {"created": 5, "data": [{"b64_json": first}, {"b64_json": second, "revised_prompt": "a kite"}],
            "size": "256x256"}

    parts = images_body_parts(body)

    assert b"".join(parts) == images_body(body) == orjson.dumps(
        {**body, "data": [{"b64_json": "QUJD"}, {"b64_json": "REVG", "revised_prompt": "a kite"}]})
    assert len(parts) == 5  # JSON, view, JSON, view, JSON: nothing copied out of the vendor's answer
    assert parts[1] is first and parts[3] is second
