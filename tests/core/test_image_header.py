"""A plain PNG's size is read from its IHDR chunk without Pillow, to Pillow's own answer; any other
header is left to Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from core.image_header import PNG_HEADER_BYTES, plain_png_size


def chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def png(width: int = 64, height: int = 48, *, depth: int = 8, colour: int = 2, filtering: int = 0,
        interlace: int = 0, before_data: bytes = b"", ihdr_crc: int | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, filtering, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr, ihdr_crc) + before_data
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def pillow_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data), formats=["PNG"]) as opened:
        return opened.size


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "1", "I;16"])
def test_a_png_as_pillow_writes_it_is_read_without_pillow_to_pillows_answer(mode: str) -> None:
    out = io.BytesIO()
    Image.new(mode, (300, 200)).save(out, format="PNG")
    data = out.getvalue()
    assert plain_png_size(data[:PNG_HEADER_BYTES]) == pillow_size(data) == (300, 200)


@pytest.mark.parametrize(("depth", "colour"), [(1, 0), (16, 0), (16, 2), (4, 3), (16, 4), (16, 6)])
def test_every_bit_depth_and_colour_type_of_the_standard_is_plain(depth: int, colour: int) -> None:
    data = png(depth=depth, colour=colour)
    assert plain_png_size(data[:PNG_HEADER_BYTES]) == (64, 48)
    assert (depth, colour) in PngImagePlugin._MODES  # Pillow reads the same pairs


def test_an_interlaced_png_is_plain() -> None:
    assert plain_png_size(png(interlace=1)) == (64, 48)


@pytest.mark.parametrize(
    "data",
    [
        png(ihdr_crc=0),
        png(depth=3),
        png(depth=16, colour=3),
        png(colour=5),
        png(filtering=1),
        png(interlace=2),
        png(width=0),
        png(height=0),
        png(20_000, 20_000),
        png(before_data=chunk(b"tEXt", b"Comment\0hello")),
        png(before_data=chunk(b"tEXt", b"Comment\0hello", crc=0)),
        png()[:PNG_HEADER_BYTES - 1],
        b"\xff\xd8\xff\xe0" + bytes(60),
    ],
    ids=["bad-ihdr-crc", "depth-3", "palette-16-bit", "colour-type-5", "filter-1", "interlace-2", "no-width",
         "no-height", "past-pillows-bomb-warning", "chunk-before-data", "bad-chunk-before-data", "cut-short",
         "jpeg"],
)
def test_any_other_header_is_left_to_pillow(data: bytes) -> None:
    assert plain_png_size(data[:PNG_HEADER_BYTES]) is None


def test_a_palette_png_is_left_to_pillow_for_its_palette_chunk() -> None:
    out = io.BytesIO()
    Image.new("P", (30, 20)).save(out, format="PNG")
    assert plain_png_size(out.getvalue()[:PNG_HEADER_BYTES]) is None
