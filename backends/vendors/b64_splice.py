"""An OpenAI-style images answer read without copying its base64: ``{"data": [{"b64_json": ...}]}``.

orjson turns each 2 MB base64 string into a Python ``str`` (a scan and a copy), and the gateway
then encodes it again for the client (another scan and copy). Here each base64 string is found
in the vendor's body and handed on as a ``memoryview`` of it, spliced as it is into the client's
answer (``proxy.images.body``). That is safe only if the bytes can stand inside a JSON string as
they are, so each one is checked to lie between ``+`` and ``z``: no control character, no quote,
nothing beyond ASCII; and the body holds no backslash at all (no JSON escape anywhere, the case
of every vendor measured), which rules out the one character of that range JSON would read
otherwise. Whether it is an image is checked later, from its head and tail (``image_check``).

Why not a JSON parser over the whole body: msgspec skipping a 2 MB string (checking each byte
for what JSON forbids in a string) was a quarter of the gateway's CPU on a large image; numpy's
minimum and maximum of the same bytes take a twentieth of that, and ``bytes.find`` (memchr)
locates the string. ``bench/b64_passthrough.py`` measures both.

How the rest of the body is still read by a parser, and the strings found are proved to be the
``b64_json`` values: each string's content is swapped for a marker, ``\\\\0``, ``\\\\1``... (an
escaped backslash, then its number), and msgspec decodes what is left (a few hundred bytes). A
backslash appears nowhere else in it, so a value that decodes to a marker *is* the string that was
cut there, quotes included; every marker must come back once, as an entry's ``b64_json``.

Anything else (an escape, a byte out of range, a field of an unexpected type, a string found where
it is not a ``b64_json`` value) returns None, and the vendor's parser reads the body the
ordinary way, with its own error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy

KEY = b'"b64_json"'
LOWEST, HIGHEST = ord("+"), ord("z")
"""The base64 alphabet's range (``+/0-9=A-Za-z``); of the rest inside it only ``\\`` means
anything to JSON, and no body with one is read here."""
_WHITESPACE = b" \t\n\r"
_COLON, _QUOTE = ord(":"), ord('"')


class _Entry(msgspec.Struct):
    b64_json: str | None = None
    url: str | None = None


class _Answer(msgspec.Struct):
    data: list[_Entry]


_DECODER = msgspec.json.Decoder(_Answer)
_MINIMUM, _MAXIMUM = numpy.minimum.reduce, numpy.maximum.reduce
"""The reductions themselves, without ``ndarray.min``'s Python wrapper."""


@dataclass(slots=True)
class VendorImages:
    b64_images: list[memoryview] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)

    @classmethod
    def decode(cls, body: bytes | bytearray) -> VendorImages | None:
        """The images of ``body``, base64 as read-only views into it; None when the fast path does
        not apply."""
        if b"\\" in body:
            return None
        strings = key_strings(body)
        if strings is None or not all(json_safe_base64(body, start, end) for start, end in strings):
            return None
        try:
            answer = _DECODER.decode(marked(body, strings))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        markers = {marker(index): index for index in range(len(strings))}
        view = memoryview(body).toreadonly()
        images = cls()
        for entry in answer.data:
            if entry.b64_json is not None:
                index = markers.pop(entry.b64_json, None)
                if index is None:
                    return None  # not a string cut here (or one read twice)
                start, end = strings[index]
                images.b64_images.append(view[start:end])
            elif entry.url is not None:
                images.image_urls.append(entry.url)
            else:
                return None
        return images if not markers else None  # a string cut where no entry's b64_json is


def key_strings(body: bytes | bytearray) -> list[tuple[int, int]] | None:
    """Where each string that follows ``"b64_json":`` lies (its content, quotes excluded); None
    when one has no end. Only a guess at the JSON's structure: ``decode`` proves it."""
    strings: list[tuple[int, int]] = []
    found = body.find(KEY)
    while found >= 0:
        at = _skip_whitespace(body, found + len(KEY))
        if at < len(body) and body[at] == _COLON:
            at = _skip_whitespace(body, at + 1)
            if at < len(body) and body[at] == _QUOTE:
                end = body.find(b'"', at + 1)
                if end < 0:
                    return None
                strings.append((at + 1, end))
                at = end + 1
        found = body.find(KEY, at)
    return strings


def json_safe_base64(body: bytes | bytearray, start: int, end: int) -> bool:
    """Whether ``body[start:end]`` holds only bytes from ``+`` to ``z`` (read in place)."""
    if end == start:
        return True
    values = numpy.frombuffer(body, numpy.uint8, count=end - start, offset=start)
    return bool(_MINIMUM(values) >= LOWEST and _MAXIMUM(values) <= HIGHEST)


def marker(index: int) -> str:
    """What the ``index``-th cut string decodes to in ``marked``'s body: a backslash and the number."""
    return f"\\{index}"


def marked(body: bytes | bytearray, strings: list[tuple[int, int]]) -> bytes:
    """``body`` with each string's content replaced by its marker, escaped (``\\\\`` and the number)."""
    pieces: list[bytes | bytearray] = []
    at = 0
    for index, (start, end) in enumerate(strings):
        pieces += (body[at:start], b"\\\\%d" % index)
        at = end
    pieces.append(body[at:])
    return b"".join(pieces)


def _skip_whitespace(body: bytes | bytearray, at: int) -> int:
    while at < len(body) and body[at] in _WHITESPACE:
        at += 1
    return at
