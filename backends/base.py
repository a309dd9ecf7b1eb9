"""The interface every backend implements: five vendors, the GPU worker, the in-process pipeline.

A backend turns one ``ImageRequest`` into images or raises a ``BackendError`` (see
``core.errors``). It never retries and never fails over: the router does both, the same way for
every backend.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from core.deadline import Deadline
from core.errors import VendorProtocolError
from core.request import ImageRequest

ImageFormat = Literal["png", "jpeg", "webp"]

_MAGIC: tuple[tuple[bytes, ImageFormat], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)


def sniff_format(head: bytes) -> ImageFormat | None:
    """The image format from its first bytes, or None when it is none we serve."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


class GeneratedImage:
    """One image, held as bytes or as base64 text, converting lazily and at most once.

    A vendor that answers in base64 and a client that wants base64 never pay for a decode and
    re-encode: the text passes through untouched. The format is sniffed from the first bytes,
    which for base64 means decoding 24 characters, not the image.
    """

    __slots__ = ("_b64", "_data", "format")

    def __init__(self, *, data: bytes | None = None, b64: str | None = None) -> None:
        if data is None and b64 is None:
            raise ValueError("an image needs bytes or base64 text")
        self._data = data
        self._b64 = b64
        head = data[:16] if data is not None else _b64_head(b64 or "")
        fmt = sniff_format(head)
        if fmt is None:
            raise VendorProtocolError("the image is not PNG, JPEG or WebP")
        self.format: ImageFormat = fmt

    @property
    def data(self) -> bytes:
        if self._data is None:
            try:
                self._data = base64.b64decode(self._b64 or "", validate=False)
            except (binascii.Error, ValueError) as exc:
                raise VendorProtocolError("the image's base64 does not decode") from exc
        return self._data

    @property
    def b64(self) -> str:
        if self._b64 is None:
            self._b64 = base64.b64encode(self._data or b"").decode("ascii")
        return self._b64

    def __len__(self) -> int:
        """The image's size in bytes (for base64, counted from the text without decoding it)."""
        if self._data is not None:
            return len(self._data)
        text = self._b64 or ""
        return len(text) * 3 // 4 - (len(text[-2:]) - len(text[-2:].rstrip("=")))

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes, decoding no more base64 than that takes."""
        if self._data is not None:
            return self._data[:size]
        text = self._b64 or ""
        return _b64_decode(text[: -(-size // 3) * 4])[:size]

    def tail(self, size: int) -> bytes:
        """The last ``size`` bytes (at most), decoding only the base64 that holds them."""
        if self._data is not None:
            return self._data[-size:]
        text = self._b64 or ""
        if len(text) % 4:
            raise VendorProtocolError("the image's base64 is cut short")
        groups = -(-size // 3) + 1  # enough 4-character groups for ``size`` bytes, padding included
        return _b64_decode(text[-groups * 4:])[-size:]


def _b64_head(text: str) -> bytes:
    return _b64_decode(text[:24])


def _b64_decode(text: str) -> bytes:
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise VendorProtocolError("the image's base64 does not decode") from exc


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can serve. Data, not code: the router filters on it and the docs print it.

    ``seed``, ``negative_prompt``, ``guidance`` and ``steps`` say whether the backend has a field
    for them at all: a request that asks for one explicitly is never sent to a backend that
    would silently ignore it.
    """

    max_steps: int = 50
    min_side: int = 256
    max_side: int = 1536
    max_n: int = 4
    image_to_image: bool = False
    negative_prompt: bool = True
    """False: a request with a negative prompt goes elsewhere (it would be ignored here)."""
    seed: bool = True
    guidance: bool = True
    steps: bool = True
    output_formats: frozenset[str] = frozenset({"png", "jpeg"})
    fixed_steps: frozenset[int] | None = None
    """When set, the only step counts served (the local Lightning checkpoints: 1, 2, 4, 8)."""

    def refusal(self, request: ImageRequest) -> str | None:
        """Why this backend cannot serve ``request``, or None when it can."""
        asked = request.model_fields_set
        if "steps" in asked and not self.steps:
            return "no steps field (the vendor picks its own)"
        if self.steps and request.steps > self.max_steps:
            return f"steps {request.steps} > {self.max_steps}"
        if self.fixed_steps is not None and request.steps not in self.fixed_steps:
            return f"steps {request.steps} not in {sorted(self.fixed_steps)}"
        for side in (request.width, request.height):
            if not self.min_side <= side <= self.max_side:
                return f"size {request.size} outside {self.min_side}-{self.max_side}"
        if request.n > self.max_n:
            return f"n {request.n} > {self.max_n}"
        if request.is_edit and not self.image_to_image:
            return "no image-to-image"
        if "seed" in asked and not self.seed:
            return "no seed field"
        if request.negative_prompt and not self.negative_prompt:
            return "no negative_prompt field"
        if "guidance_scale" in asked and not self.guidance:
            return "no guidance field"
        return None


@dataclass(slots=True)
class BackendResult:
    """Images plus what the backend reported about the work (for billing and metrics)."""

    images: list[GeneratedImage]
    run_seconds: float | None = None
    """Run time the vendor reports and bills by (Eachlabs predict_time, local GPU-seconds)."""
    vendor_cost_usd: Decimal | None = None
    """Cost the vendor itself reported (Runflow's ``cost``), kept for reconciliation."""
    vendor_request_id: str | None = None


LoadState = Literal["loading", "ready", "failed"]


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What a health probe (a free request: a vendor's models, status or account endpoint, or
    a HEAD of its base URL) found."""

    ok: bool
    detail: str = ""
    seconds: float = 0.0
    verifies_key: bool = False
    """The probe used our key on an endpoint that checks it: a pass means the key works."""
    key_refused: bool = False
    """The vendor refused our key or credit (401/402/403) on an endpoint that checks it."""
    payment_refused: bool = False
    """The refusal was for payment (402): it may clear on its own, so the quarantine is brief."""


@runtime_checkable
class ProbedBackend(Protocol):
    """A backend that can be health-probed without paying for a generation."""

    async def probe(self, timeout_s: float) -> ProbeOutcome: ...


@runtime_checkable
class LoadsModel(Protocol):
    """A backend that loads a model before it can serve (the in-process pipeline): readiness
    waits for it, and the wiring starts it at boot."""

    @property
    def load_state(self) -> LoadState: ...

    async def start(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """One vendor in one region, or one local worker."""

    @property
    def vendor(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
        """Serve ``request`` before ``deadline`` or raise a ``core.errors.BackendError``."""
        ...

    async def aclose(self) -> None: ...


