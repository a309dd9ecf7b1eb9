"""The images a simulator serves by URL, like a vendor's CDN or presigned bucket.

A stored file is a render recipe, not bytes: the image is drawn (or taken from the render
cache) when fetched. Entries expire like presigned URLs, and an ``output_404`` fault stores one
that answers 404 from the start.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from backends.simulators.render import RenderSpec

FILES_PREFIX = "/_sim/files/"
_EXTENSIONS = {"png": "png", "jpeg": "jpg"}


@dataclass(frozen=True, slots=True)
class StoredFile:
    spec: RenderSpec
    expires_at: float
    """``time.monotonic()`` after which the URL answers 404."""
    missing: bool = False


class FileStore:
    """Only the server's event loop touches it, so it needs no lock."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._max_entries = max_entries

    def add(self, spec: RenderSpec, ttl_s: float, *, missing: bool = False) -> str:
        """Store a recipe; returns the file's path on the simulator."""
        name = f"{secrets.token_hex(12)}.{_EXTENSIONS[spec.fmt]}"
        self._files[name] = StoredFile(spec, time.monotonic() + ttl_s, missing)
        if len(self._files) > self._max_entries:
            self._files.popitem(last=False)
        return FILES_PREFIX + name

    def get(self, name: str) -> StoredFile | None:
        """The live file called ``name``; None when unknown, expired or stored as missing."""
        found = self._files.get(name)
        if found is None or found.missing or found.expires_at < time.monotonic():
            return None
        return found
