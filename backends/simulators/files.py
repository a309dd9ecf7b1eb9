"""The images a simulator serves by URL, like a vendor's CDN or presigned bucket.

A stored file is a render recipe, not bytes: the image is drawn (or taken from the render
cache) when fetched. Entries expire like presigned URLs, and an ``output_404`` fault stores one
that answers 404 from the start.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from backends.simulators.bounded import BoundedStore
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
    def __init__(self, max_entries: int = 100_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._files: BoundedStore[str, StoredFile] = BoundedStore(max_entries, max_bytes)

    def add(self, spec: RenderSpec, ttl_s: float, *, missing: bool = False) -> str:
        """Store a recipe; returns the file's path on the simulator."""
        name = f"{secrets.token_hex(12)}.{_EXTENSIONS[spec.fmt]}"
        weight = len(spec.init_image) if spec.init_image is not None else 0
        self._files.put(name, StoredFile(spec, time.monotonic() + ttl_s, missing), weight)
        return FILES_PREFIX + name

    def get(self, name: str) -> StoredFile | None:
        """The live file called ``name``; None when unknown, expired or stored as missing."""
        found = self._files.get(name)
        if found is None or found.missing or found.expires_at < time.monotonic():
            return None
        return found
