"""The images answer as JSON bytes, the vendor's base64 spliced in rather than re-encoded.

An image that arrived as base64 and leaves as base64 is held as a view into the vendor's answer
(``backends.vendors.b64_splice``). Encoding the answer with orjson would need it as a ``str`` (a
2 MB copy) and would scan it again for characters to escape (base64 has none). Instead every
other part of the answer is encoded by orjson, in order, and the base64 goes between them as
it is. ``images_body_parts`` hands the pieces over as they are, for a server that writes each
one to the socket (no copy at all); ``images_body`` joins them (one copy).
"""

from __future__ import annotations

from typing import Any

import orjson

_ASCII = (bytes, memoryview)


def images_body(body: dict[str, Any]) -> bytes:
    """``body`` as JSON; ``data[i]["b64_json"]`` may be ASCII bytes or a view, spliced in as is."""
    return b"".join(images_body_parts(body))


def images_body_parts(body: dict[str, Any]) -> list[bytes | memoryview]:
    """``body`` as JSON in pieces that concatenate to ``images_body(body)``: each spliced base64
    a piece of its own, the JSON around and between them one piece each."""
    data = body.get("data")
    if not isinstance(data, list) or not any(isinstance(item.get("b64_json"), _ASCII) for item in data):
        return [orjson.dumps(body)]
    parts: list[bytes | memoryview] = []
    json: list[bytes] = [b"{"]
    for index, (name, value) in enumerate(body.items()):
        json.append(b"," + orjson.dumps(name) + b":" if index else orjson.dumps(name) + b":")
        if name != "data":
            json.append(orjson.dumps(value))
            continue
        json.append(b"[")
        for position, item in enumerate(data):
            if position:
                json.append(b",")
            b64 = item.get("b64_json")
            if not isinstance(b64, _ASCII):
                json.append(orjson.dumps(item))
                continue
            rest = orjson.dumps({name: value for name, value in item.items() if name != "b64_json"})
            json.append(b'{"b64_json":"')
            parts.extend((b"".join(json), b64))
            json = [b'"' + (b"," + rest[1:] if rest != b"{}" else b"}")]
        json.append(b"]")
    json.append(b"}")
    parts.append(b"".join(json))
    return parts
