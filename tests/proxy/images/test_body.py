"""The images answer with the vendor's base64 spliced in is the JSON orjson would write."""

from __future__ import annotations

import orjson

from proxy.images.body import images_body


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

