"""The plain values that pass between a vendor's pure functions and the shared transport."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from backends.base import B64Text
from core.errors import VendorProtocolError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One HTTP request to a vendor, relative to the region's base URL (or absolute)."""

    method: str
    path: str
    json: Any = None


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    """Lowercase names; a repeated field's values joined by ", " (both HTTP clients alike)."""
    body: bytes | bytearray
    """A ``bytearray`` when the lean client lends the buffer it read into (``read_buffers``):
    never written to once answered."""

    def json(self) -> Any:
        """The body as JSON, or a protocol error naming what came instead (truncated)."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise VendorProtocolError(f"body is not JSON: {self.body[:200]!r}") from exc


@dataclass(slots=True)
class VendorOutput:
    """What a vendor answered with: base64 images, image URLs to fetch, and billing facts."""

    b64_images: list[B64Text] = field(default_factory=list)
    """As text, or as views into the vendor's answer (``b64_splice``), never copied."""
    image_urls: list[str] = field(default_factory=list)
    run_seconds: float | None = None
    vendor_cost_usd: Decimal | None = None
    vendor_request_id: str | None = None
    flagged_nsfw: bool = False


def require(mapping: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``mapping[key]`` when it is of ``kind``, else a protocol error: never invent a field."""
    if not isinstance(mapping, dict) or not isinstance(mapping.get(key), kind):
        raise VendorProtocolError(f"{what}: expected '{key}' in {str(mapping)[:200]}")
    return mapping[key]


def reported_usd(value: Any, what: str) -> Decimal | None:
    """A cost a vendor reported (a string or a number) as exact USD, or None.

    The cost is kept for reconciliation only, so one we cannot read is logged rather than failing
    an image that was delivered, and never guessed.
    """
    if value is None:
        return None
    amount = None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite():
        log.warning("%s is not a cost: %.80r", what, value)
        return None
    return amount


def nsfw_flagged(mapping: Any) -> bool:
    """The Replicate-style ``nsfw_content_detected`` flag (one bool, or one per image).

    No vendor documents it for this model, so it is read only where it is present; the gateway's
    own blank-image check still runs either way.
    """
    flag = mapping.get("nsfw_content_detected") if isinstance(mapping, dict) else None
    return flag is True or (isinstance(flag, list) and any(item is True for item in flag))
