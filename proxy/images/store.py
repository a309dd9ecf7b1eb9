"""Where images live between generation and the client's download (60 minutes by default).

Clients given a ``url`` fetch the image from the gateway, never from a vendor's short-lived
link. Two implementations: in the state store (memory or Redis, so any replica can serve the
download) or in a directory (a shared volume, and where ``--workers`` share the embedded store).

A download from the directory is handed over as the open file (``ImageFile``), not its bytes: the
server sends it with ``sendfile(2)`` (``proxy.serving.file_part``), so a 1.5 MB image is neither
read into the process nor copied through it (issue 17).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from backends.base import ImageFormat, sniff_format
from core.state.base import StateStore

MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
IMAGE_NAME_PATTERN = r"[A-Za-z0-9_-]{16,64}\.(png|jpeg|webp)"
_NAME = re.compile(IMAGE_NAME_PATTERN)


def new_image_name(fmt: ImageFormat) -> str:
    return f"{secrets.token_urlsafe(18)}.{fmt}"


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None  # fullmatch: `$` alone would accept a trailing newline


@dataclass(slots=True)
class ImageFile:
    """An image kept as a file, open for its download: ``size`` bytes from the start of ``fd``.
    Whoever is handed it closes it (``close``), once the download is sent."""

    fd: int
    size: int

    def read(self) -> bytes:
        """The whole image (for a server that cannot send from the file); short if the file was
        cut since it was opened."""
        return os.pread(self.fd, self.size, 0)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ImageStore(Protocol):
    ttl_s: float
    """How long an image stays downloadable."""

    async def put(self, data: bytes, fmt: ImageFormat) -> str:
        """Keep ``data`` for the TTL and return its name (``<id>.<ext>``)."""
        ...

    async def get(self, name: str) -> bytes | None: ...

    async def download(self, name: str) -> bytes | ImageFile | None:
        """The image for its download: its bytes, or the open file they are sent from."""
        ...


class StateImageStore:
    def __init__(self, store: StateStore, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s

    async def put(self, data: bytes, fmt: ImageFormat) -> str:
        name = new_image_name(fmt)
        await self.store.set(f"image:{name}", data, ttl=self.ttl_s)
        return name

    async def get(self, name: str) -> bytes | None:
        return await self.store.get(f"image:{name}") if valid_name(name) else None

    async def download(self, name: str) -> bytes | None:
        return await self.get(name)


INLINE_WRITE_BYTES = 64 * 1024
"""An image up to this size is written on the event loop: into the page cache, tens of
microseconds, less than the hop to a thread costs; a larger one is written from a thread."""
SWEEP_EVERY_S = 60.0
"""How often a directory store deletes its expired images: most are never asked for again, and
the directory must not grow for ever (the default SQLite store keeps its images there)."""


class DirectoryImageStore:
    """Images as files; an image older than the TTL is gone (deleted when next asked for, and by
    a sweep at most every ``SWEEP_EVERY_S``, from a ``put``)."""

    def __init__(self, directory: Path, ttl_s: float) -> None:
        self.directory = directory
        self.ttl_s = ttl_s
        directory.mkdir(parents=True, exist_ok=True)
        self._next_sweep = 0.0

    async def put(self, data: bytes, fmt: ImageFormat) -> str:
        name = new_image_name(fmt)
        if len(data) <= INLINE_WRITE_BYTES:
            (self.directory / name).write_bytes(data)
        else:
            await asyncio.to_thread((self.directory / name).write_bytes, data)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            await asyncio.to_thread(self.sweep)
        return name

    def sweep(self) -> int:
        """Delete the images older than the TTL (anything else in the directory is left); how many."""
        expired_before = time.time() - self.ttl_s
        swept = 0
        for entry in os.scandir(self.directory):
            try:
                if valid_name(entry.name) and entry.stat().st_mtime < expired_before:
                    os.unlink(entry.path)
                    swept += 1
            except FileNotFoundError:  # another worker swept it, or it was just asked for
                continue
        return swept

    async def get(self, name: str) -> bytes | None:
        if not valid_name(name):
            return None
        return await asyncio.to_thread(self._read_fresh, self.directory / name)

    async def download(self, name: str) -> ImageFile | None:
        if not valid_name(name):
            return None
        return await asyncio.to_thread(self._open_fresh, self.directory / name)

    def _read_fresh(self, path: Path) -> bytes | None:
        image = self._open_fresh(path)
        if image is None:
            return None
        try:
            return image.read()
        finally:
            image.close()

    def _open_fresh(self, path: Path) -> ImageFile | None:
        """The file, open, if it is a fresh image: a regular file (not a link: ``O_NOFOLLOW``)
        younger than the TTL that starts as an image does."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:  # a symbolic link: nothing this store wrote
                return None
            raise
        try:
            info = os.fstat(fd)
            regular = stat.S_ISREG(info.st_mode)
            expired = regular and info.st_mtime + self.ttl_s < time.time()
            if regular and not expired and sniff_format(os.pread(fd, 16, 0)):
                return ImageFile(fd, info.st_size)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if expired:
            path.unlink(missing_ok=True)
        return None
