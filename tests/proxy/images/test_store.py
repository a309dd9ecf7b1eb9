"""Generated images are kept for the TTL under an unguessable name, in state or in a directory."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from core.state.memory import MemoryStateStore
from proxy.images import store as store_module
from proxy.images.store import (
    DirectoryImageStore,
    ImageFile,
    ImageStore,
    StateImageStore,
    new_image_name,
    valid_name,
)
from tests.proxy.images.samples import encode


def make_store(kind: str, tmp_path: Path, ttl_s: float = 60) -> ImageStore:
    if kind == "state":
        return StateImageStore(MemoryStateStore(), ttl_s)
    return DirectoryImageStore(tmp_path / "images", ttl_s)


@pytest.fixture(params=["state", "directory"])
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


async def test_a_stored_image_comes_back_under_its_name(kind: str, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path)
    png = encode("PNG")

    name = await store.put(png, "png")

    assert name.endswith(".png")
    assert valid_name(name)
    assert await store.get(name) == png


async def test_each_image_gets_its_own_name(kind: str, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path)

    first = await store.put(encode("PNG", seed=1), "png")
    second = await store.put(encode("PNG", seed=2), "png")

    assert first != second
    assert await store.get(first) != await store.get(second)


async def test_an_unknown_name_is_none(kind: str, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path)

    assert await store.get(new_image_name("png")) is None


async def test_an_image_expires_after_the_ttl(kind: str, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path, ttl_s=0.05)
    name = await store.put(encode("JPEG"), "jpeg")
    assert await store.get(name) is not None

    await asyncio.sleep(0.06)
    if kind == "directory":  # file times have coarse resolution on some filesystems: age the file
        path = tmp_path / "images" / name
        os.utime(path, (time.time() - 10, time.time() - 10))

    assert await store.get(name) is None


async def test_an_expired_file_is_deleted_when_asked_for(tmp_path: Path) -> None:
    store = DirectoryImageStore(tmp_path, ttl_s=60)
    name = await store.put(encode("PNG"), "png")
    os.utime(tmp_path / name, (time.time() - 61, time.time() - 61))

    assert await store.get(name) is None
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name", [
    "../x.png",
    "../../etc/passwd",
    "..%2F..%2Fsecret.png",
    "/etc/passwd.png",
    "abcdefghijklmnop.gif",
    "abcdefghijklmnop",
    "short.png",
    "abcdefghijklmnop.png\n",
    "abcdefghijklmnop/../q.png",
    "",
])
async def test_invalid_names_are_rejected_without_touching_the_store(name: str, tmp_path: Path) -> None:
    outside = tmp_path / "x.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    inner = tmp_path / "images"
    store = DirectoryImageStore(inner, ttl_s=60)
    state = MemoryStateStore()
    await state.set(f"image:{name}", b"\x89PNG\r\n\x1a\nsecret")

    assert not valid_name(name)
    assert await store.get(name) is None
    assert await StateImageStore(state, 60).get(name) is None


async def test_a_file_that_is_not_an_image_is_not_served(tmp_path: Path) -> None:
    store = DirectoryImageStore(tmp_path, ttl_s=60)
    name = new_image_name("png")
    (tmp_path / name).write_bytes(b"#!/bin/sh\necho not an image\n")

    assert await store.get(name) is None


def test_new_names_are_valid_and_carry_the_format() -> None:
    for fmt in ("png", "jpeg", "webp"):
        name = new_image_name(fmt)
        assert valid_name(name)
        assert name.rsplit(".", 1)[1] == fmt


async def test_the_state_store_keeps_images_for_the_ttl() -> None:
    state = MemoryStateStore()
    name = await StateImageStore(state, ttl_s=120).put(encode("PNG"), "png")

    ttl = await state.ttl(f"image:{name}")

    assert ttl is not None and 119 < ttl <= 120


async def test_a_link_in_the_image_directory_is_not_followed(tmp_path: Path) -> None:
    """Only files the store wrote are served: a symbolic link under an image's name, to an image
    elsewhere, is not an image here."""
    outside = tmp_path / "outside.png"
    outside.write_bytes(encode("PNG"))
    store = DirectoryImageStore(tmp_path / "images", ttl_s=60)
    name = new_image_name("png")
    (tmp_path / "images" / name).symlink_to(outside)

    assert await store.get(name) is None
    assert await store.download(name) is None


async def test_a_download_from_the_directory_is_the_open_file(tmp_path: Path) -> None:
    store = DirectoryImageStore(tmp_path, ttl_s=60)
    png = encode("PNG")
    name = await store.put(png, "png")

    image = await store.download(name)

    assert isinstance(image, ImageFile)
    try:
        assert image.size == len(png) and image.read() == png
    finally:
        image.close()
    assert image.fd == -1


async def test_a_put_sweeps_the_expired_images_nobody_asked_for_again(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The default SQLite store keeps its images on disk: most are never fetched again, and
    deleting them only when asked for let the directory grow for ever."""
    monkeypatch.setattr(store_module, "SWEEP_EVERY_S", 0.0)  # every put sweeps
    store = DirectoryImageStore(tmp_path, ttl_s=60)
    old = await store.put(encode("PNG", seed=1), "png")
    os.utime(tmp_path / old, (time.time() - 120, time.time() - 120))
    (tmp_path / "notes.txt").write_text("not an image: left alone")

    fresh = await store.put(encode("PNG", seed=2), "png")

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([fresh, "notes.txt"])
