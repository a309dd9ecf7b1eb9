"""Served files are render recipes with an expiry; missing ones never serve."""

from __future__ import annotations

from backends.simulators.files import FILES_PREFIX, FileStore
from backends.simulators.render import RenderSpec

PNG = RenderSpec(vendor="imageapi", prompt="p", seed=1, width=256, height=256)
JPEG = RenderSpec(vendor="runflow", prompt="p", seed=1, width=256, height=256, fmt="jpeg")


def test_a_stored_file_is_found_by_its_name_with_the_formats_extension() -> None:
    store = FileStore()

    png_path, jpeg_path = store.add(PNG, 60), store.add(JPEG, 60)

    assert png_path.startswith(FILES_PREFIX) and png_path.endswith(".png") and jpeg_path.endswith(".jpg")
    found = store.get(png_path.removeprefix(FILES_PREFIX))
    assert found is not None and found.spec == PNG


def test_expired_missing_and_unknown_files_are_not_found() -> None:
    store = FileStore()

    expired = store.add(PNG, -1).removeprefix(FILES_PREFIX)
    missing = store.add(PNG, 60, missing=True).removeprefix(FILES_PREFIX)

    assert store.get(expired) is None
    assert store.get(missing) is None
    assert store.get("nope.png") is None


def test_the_store_keeps_the_newest_entries() -> None:
    store = FileStore(max_entries=1)
    first = store.add(PNG, 60).removeprefix(FILES_PREFIX)
    second = store.add(PNG, 60).removeprefix(FILES_PREFIX)

    assert store.get(first) is None
    assert store.get(second) is not None
