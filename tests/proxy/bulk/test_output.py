"""Images are written whole or not at all; the manifest survives a cut-off line."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.bulk.output import MANIFEST_NAME, Manifest, write_atomically


def test_an_image_is_written_under_its_name_with_nothing_left_beside_it(tmp_path: Path) -> None:
    write_atomically(tmp_path, "fox.png", b"image bytes")
    write_atomically(tmp_path, "fox.png", b"newer bytes")
    assert [p.name for p in tmp_path.iterdir()] == ["fox.png"]
    assert (tmp_path / "fox.png").read_bytes() == b"newer bytes"


def test_a_failed_write_leaves_neither_a_partial_file_nor_the_name(tmp_path: Path) -> None:
    (tmp_path / "fox.png").mkdir()  # the rename onto the name fails
    with pytest.raises(OSError):
        write_atomically(tmp_path, "fox.png", b"image bytes")
    assert [p.name for p in tmp_path.iterdir()] == ["fox.png"] and (tmp_path / "fox.png").is_dir()


def test_a_name_reaching_outside_the_directory_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "out"
    inside.mkdir()
    with pytest.raises(ValueError, match="outside"):
        write_atomically(inside, "../fox.png", b"x")
    assert not (tmp_path / "fox.png").exists()


def test_the_manifest_reads_back_whole_records_and_skips_a_cut_line(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    assert manifest.records() == []
    manifest.append({"name": "fox", "cost_usd": "0.04"})
    with open(tmp_path / MANIFEST_NAME, "a") as handle:
        handle.write('{"name": "bo')  # a run killed mid-line
    resumed = Manifest(tmp_path)
    resumed.append({"name": "boat"})
    resumed.append({"name": "teapot"})
    assert [r["name"] for r in resumed.records()] == ["fox", "boat", "teapot"]
