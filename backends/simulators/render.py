"""Draws the simulators' images: real PNG/JPEG files, cheap enough to serve benchmarks.

An image is a pure function of its ``RenderSpec``: the same seed and prompt give the same bytes,
so tests can assert determinism and caches can key on the spec. Rendering costs a few
milliseconds at 1024x1024 (~100 ms with realistic grain); ``RenderCache`` keeps recent results
(bytes and base64 both) so a benchmark that repeats a request pays nothing after the first.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import random
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps

from backends.simulators.bounded import BoundedStore

ImageFormat = Literal["png", "jpeg"]

_NOISE_MASK = bytes(value & 0x07 for value in range(256))
"""Keeps 3 low bits of random bytes: grain that makes a PNG weigh like a real SDXL one (~1.5 MB)."""


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything an image depends on; equal specs render equal bytes."""

    vendor: str
    prompt: str
    seed: int
    width: int
    height: int
    fmt: ImageFormat = "png"
    steps: int = 4
    blank: bool = False
    """A safety filter's answer: solid black, nothing drawn."""
    init_image: bytes | None = None
    """Image-to-image source; the output blends it with the generated pattern."""
    strength: float = 0.0
    realistic: bool = False
    """Add seeded grain so the encoded size matches real model output (for benchmarks)."""


@dataclass(frozen=True, slots=True)
class RenderedImage:
    """Encoded bytes and their base64 text, both made once when rendered (off the event loop)."""

    data: bytes
    b64: str

    @classmethod
    def of(cls, data: bytes) -> RenderedImage:
        return cls(data, base64.b64encode(data).decode("ascii"))


def render(spec: RenderSpec) -> RenderedImage:
    """Draw and encode the image ``spec`` describes (CPU-bound; a few ms at 1024x1024)."""
    size = (spec.width, spec.height)
    if spec.blank:
        image = Image.new("RGB", size)
    else:
        rng = random.Random(_seed_of(spec))
        image = _pattern(rng, size)
        if spec.realistic:
            image = _add_grain(rng, image)
        if spec.init_image is not None:
            image = _transform(spec.init_image, image, spec.strength)
        _caption(image, spec)
    out = io.BytesIO()
    if spec.fmt == "jpeg":
        image.save(out, format="JPEG", quality=90)
    else:
        # Fast compression for drawn images; a blank one gets the default level, as a vendor's
        # encoder would give it, so it weighs a few hundred bytes as real filtered answers do.
        image.save(out, format="PNG", compress_level=6 if spec.blank else 1)
    return RenderedImage.of(out.getvalue())


def _seed_of(spec: RenderSpec) -> int:
    """Seed, prompt and vendor pick the pattern; an edit draws a different one than text-to-image."""
    mode = "edit" if spec.init_image is not None else "text"
    digest = hashlib.sha256(f"{spec.vendor}\0{mode}\0{spec.seed}\0{spec.prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _color(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _pattern(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A two-colour gradient in a seeded direction with a few seeded shapes on it."""
    ramp = Image.linear_gradient("L")
    ramp = ramp.rotate(rng.choice((0, 90, 180, 270)))
    image = ImageOps.colorize(ramp.resize(size), _color(rng), _color(rng))
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(rng.randint(3, 6)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randint(width // 10, width // 3), y0 + rng.randint(height // 10, height // 3)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=_color(rng))
    return image


def _add_grain(rng: random.Random, image: Image.Image) -> Image.Image:
    noise = rng.randbytes(image.width * image.height * 3).translate(_NOISE_MASK)
    return ImageChops.add(image, Image.frombytes("RGB", image.size, noise))


def decodable(source: bytes) -> bool:
    """Whether ``source`` is a whole image Pillow can read (an image-to-image input check)."""
    try:
        with Image.open(io.BytesIO(source)) as opened:
            opened.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return False
    return True


def _transform(source: bytes, pattern: Image.Image, strength: float) -> Image.Image:
    """Image-to-image: the source, resized, with the pattern blended in by ``strength``."""
    with Image.open(io.BytesIO(source)) as opened:
        base = opened.convert("RGB").resize(pattern.size)
    return Image.blend(base, pattern, strength)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _caption(image: Image.Image, spec: RenderSpec) -> None:
    """Vendor name, prompt and parameters, legible on any background."""
    width, height = image.size
    font_size = max(10, min(width, height) // 28)
    chars = max(10, int(width / (font_size * 0.6)))
    lines = [spec.vendor, *textwrap.wrap(spec.prompt, chars)[:6]]
    lines.append(f"seed {spec.seed} | {spec.steps} steps | {width}x{height}")
    if spec.init_image is not None:
        lines.append(f"image-to-image, strength {spec.strength:g}")
    text = "\n".join(lines)
    draw = ImageDraw.Draw(image)
    font = _font(font_size)
    margin = font_size // 2
    box = draw.multiline_textbbox((margin, margin), text, font=font)
    draw.rectangle((box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
    draw.multiline_text((margin, margin), text, font=font, fill=(255, 255, 255))


class RenderCache:
    """An LRU of rendered images, bounded by count and bytes, shared by all simulators.

    A hit costs a dict lookup on the event loop; a miss renders in a worker thread so a slow
    render never stalls the simulator's other connections.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._entries: BoundedStore[RenderSpec, RenderedImage] = BoundedStore(max_entries, max_bytes)

    def get(self, spec: RenderSpec) -> RenderedImage | None:
        return self._entries.get(spec, touch=True)

    def put(self, spec: RenderSpec, image: RenderedImage) -> None:
        source = len(spec.init_image) if spec.init_image is not None else 0
        self._entries.put(spec, image, len(image.data) + len(image.b64) + source)

    async def obtain(self, spec: RenderSpec) -> RenderedImage:
        """The cached image, or render it off the event loop and cache it."""
        found = self.get(spec)
        if found is None:
            found = await asyncio.to_thread(render, spec)
            self.put(spec, found)
        return found

    def clear(self) -> None:
        self._entries.clear()


RENDERS = RenderCache()
"""The process-wide cache: identical requests to any simulator render once."""
