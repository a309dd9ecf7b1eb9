"""Serves the playground's files: ``/`` (the page) and ``/playground/<file>`` (its scripts and
styles), read once from the package's ``static/`` folder.

Only the files shipped in that folder are served, by exact name, so no path from the client ever
reaches the file system. Every answer carries a Content-Security-Policy that lets the page run
only its own scripts and styles, talk only to this origin, and show images only from this origin
or from ``blob:``/``data:`` URLs it made itself; prompts are rendered as text by the scripts, and
the policy is the second wall should one ever not be.
"""

from __future__ import annotations

from importlib.resources import files
from types import MappingProxyType

from litestar import Response, get

from core.errors import NotFound

MEDIA_TYPES = MappingProxyType({
    "html": "text/html",
    "js": "text/javascript",
    "css": "text/css",
    "svg": "image/svg+xml",
})
"""Litestar adds ``; charset=utf-8`` to the ``text/`` ones."""

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "connect-src 'self'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))

SECURITY_HEADERS = MappingProxyType({
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cache-control": "no-cache",
})
"""On every playground answer. ``no-cache``: a browser revalidates, so an upgraded gateway never
runs yesterday's script against today's API."""


def load_static() -> MappingProxyType[str, bytes]:
    """Every file shipped in ``static/`` whose kind the playground serves, by name."""
    folder = files("proxy.playground").joinpath("static")
    return MappingProxyType({
        entry.name: entry.read_bytes() for entry in folder.iterdir()
        if entry.is_file() and entry.name.rsplit(".", 1)[-1] in MEDIA_TYPES
    })


STATIC = load_static()


def static_response(name: str) -> Response[bytes]:
    content = STATIC.get(name)
    if content is None:
        raise NotFound(f"The playground has no file {name!r}", param="name")
    return Response(content=content, media_type=MEDIA_TYPES[name.rsplit(".", 1)[-1]],
                    headers=dict(SECURITY_HEADERS))


@get("/", include_in_schema=False, sync_to_thread=False)
def playground_page() -> Response[bytes]:
    return static_response("index.html")


@get("/playground/{name:str}", include_in_schema=False, sync_to_thread=False)
def playground_file(name: str) -> Response[bytes]:
    return static_response(name)


PLAYGROUND_HANDLERS = (playground_page, playground_file)
