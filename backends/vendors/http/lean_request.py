"""A request as the lean client writes it: the request line, the fields, the body, in one buffer.

The target goes out as the URL spells it (a signed output URL re-quoted no longer verifies);
only what cannot stand in a request line (spaces, controls, non-ASCII) is percent-encoded, as
browsers do. Fields are ``DEFAULT_HEADERS`` (so a vendor cannot tell the clients apart), then
the call's own (which win, whatever their case); ``host`` and ``content-length`` are the client's.
A name or value that could end the field early (CR, LF, NUL) is refused before anything is sent
(a ``ValueError``, as for a host name IDNA cannot spell).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from backends.vendors.http.base import DEFAULT_HEADERS, breaks_a_field
from backends.vendors.http.lean_pool import Origin

_LINE_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))
"""Printable ASCII but the space: what a request target may carry as it is."""
_CLIENT_FIELDS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True, slots=True)
class Target:
    origin: Origin
    host: str
    """The ``host`` field: the URL's host and port as written, without credentials."""
    path: str
    """The request target: path and query, never the fragment."""


@functools.lru_cache(maxsize=4096)
def target_of(url: str) -> Target:
    """Cached: a route calls the same few URLs (parsing one costs microseconds). The URL was
    checked (``base.check_call``): an http(s) URL with a host."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    if not hostname.isascii():
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"a host name IDNA cannot encode ({exc})") from exc
    port = parts.port or (443 if parts.scheme == "https" else 80)
    netloc = parts.netloc.rpartition("@")[2]
    host = netloc if netloc.isascii() else (f"{hostname}:{parts.port}" if parts.port else hostname)
    rest = url.split("://", 1)[1].split("#", 1)[0]
    slash = rest.find("/")
    question = rest.find("?")
    start = min(index for index in (slash, question, len(rest)) if index >= 0)
    path = rest[start:]
    path = "/" + path if not path.startswith("/") else path
    if not all(0x21 <= ord(char) < 0x7F for char in path):
        path = quote(path, safe=_LINE_SAFE)
    return Target((parts.scheme, hostname.lower(), port), host, path)


def request_bytes(method: str, target: Target, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """The whole request, ready to write."""
    fields = dict(DEFAULT_HEADERS)
    for name, value in headers.items():
        key = name.lower()
        if key in _CLIENT_FIELDS:
            continue
        fields.pop(key, None)
        fields[name] = value
    lines = [f"{method} {target.path} HTTP/1.1", f"host: {target.host}"]
    lines += [f"{name}: {value}" for name, value in fields.items()]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body) if body is not None else 0}")
    if breaks_a_field("".join(lines)):
        raise ValueError("a field or the method carries a line break or a NUL")
    text = "\r\n".join(lines)
    try:
        head = (text + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError("a field that is not latin-1") from exc
    return head + body if body else head
