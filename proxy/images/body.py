"""The images answer as JSON bytes, the vendor's base64 spliced in rather than re-encoded.

An image that arrived as base64 and leaves as base64 is held as a view into the vendor's answer
(``backends.vendors.b64_splice``). Encoding the answer with orjson would need it as a ``str`` (a
2 MB copy) and would scan it again for characters to escape (base64 has none). Instead every
other part of the answer is encoded by orjson, in order, and the base64 goes between them as
it is: one copy in all, when the pieces are joined.
"""

from __future__ import annotations

from typing import Any

import orjson

_ASCII = (bytes, memoryview)


def images_body(body: dict[str, Any]) -> bytes:
    """``body`` as JSON; ``data[i]["b64_json"]`` may be ASCII bytes or a view, spliced in as is."""
    data = body.get("data")
    if not isinstance(data, list) or not any(isinstance(item.get("b64_json"), _ASCII) for item in data):
        return orjson.dumps(body)
    parts: list[bytes | memoryview] = [b"{"]
    for index, (name, value) in enumerate(body.items()):
        parts.append(b"," + orjson.dumps(name) + b":" if index else orjson.dumps(name) + b":")
        if name == "data":
            parts.append(b"[")
            for position, item in enumerate(data):
                if position:
                    parts.append(b",")
                parts.extend(_item(item))
            parts.append(b"]")
        else:
            parts.append(orjson.dumps(value))
    parts.append(b"}")
    return b"".join(parts)


def _item(item: dict[str, Any]) -> list[bytes | memoryview]:
    b64 = item.get("b64_json")
    if not isinstance(b64, _ASCII):
        return [orjson.dumps(item)]
    rest = orjson.dumps({name: value for name, value in item.items() if name != "b64_json"})
    return [b'{"b64_json":"', b64, b'"' + (b"," + rest[1:] if rest != b"{}" else b"}")]

