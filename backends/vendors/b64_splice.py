"""An OpenAI-style images answer read without copying its base64: ``{"data": [{"b64_json": ...}]}``.

orjson turns each 2 MB base64 string into a Python ``str`` (a scan and a copy), and the gateway
then encodes it again for the client (another scan and copy). msgspec decodes the answer into
``msgspec.Raw`` tokens that point into the vendor's body instead; when the body holds no
backslash at all (no JSON escape anywhere, the case of every vendor measured), each token minus
its quotes *is* the base64 text, handed on as a ``memoryview``. ``bench/b64_passthrough.py``
measures this against orjson both ways.

Anything else (an escape, a field of an unexpected type) returns None, and the vendor's parser
reads the body the ordinary way, with its own error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec


class _Entry(msgspec.Struct):
    b64_json: msgspec.Raw = msgspec.Raw()
    """The JSON token as it is in the body (empty when absent); msgspec.Raw takes no union."""
    url: str | None = None


class _Answer(msgspec.Struct):
    data: list[_Entry]


_DECODER = msgspec.json.Decoder(_Answer)
_QUOTE = ord('"')


@dataclass(slots=True)
class VendorImages:
    b64_images: list[memoryview] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)

    @classmethod
    def decode(cls, body: bytes) -> VendorImages | None:
        """The images of ``body``, base64 as views into it; None when the fast path does not apply."""
        if b"\\" in body:
            return None
        try:
            answer = _DECODER.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        images = cls()
        for entry in answer.data:
            token = memoryview(entry.b64_json)
            if len(token) and bytes(token[:5]) != b"null":
                if len(token) < 2 or token[0] != _QUOTE:
                    return None  # not a string: the ordinary parser says what is wrong
                images.b64_images.append(token[1:-1])
            elif entry.url is not None:
                images.image_urls.append(entry.url)
            else:
                return None
        return images
