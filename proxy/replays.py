"""What an ``Idempotency-Key`` keeps for its replays: the answer, with references, not images.

A replay record lives a day, far longer than an image (an hour), and is never evicted (it is
what stops a retried request from being charged twice). Keeping base64 copies in it made the
in-memory state grow without bound, so a ``b64_json`` answer is remembered with each image
stored in the image store and only its name kept; a replay reads the image back. Once the image
has expired, the replay is refused (409 ``idempotent_replay_expired``): never generated again,
never charged again. ``url`` answers are kept as they are (their URLs expire with the images).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from backends.base import GeneratedImage
from core.errors import IdempotencyConflict
from proxy.images.store import ImageStore

REPLAY_TTL_S = 24 * 3600.0
"""How long an ``Idempotency-Key``'s answer is kept for replays."""


async def replay_record(body: dict[str, Any], headers: dict[str, str], fingerprint: str,
                        images: list[GeneratedImage], store: ImageStore) -> bytes:
    """The record to remember for ``body``; base64 images are swapped for stored references."""
    data = body.get("data", [])
    if any("b64_json" in item for item in data):
        names = [await store.put(image.data, image.format) for image in images]
        data = [{**{k: v for k, v in item.items() if k != "b64_json"}, "image_ref": name}
                for item, name in zip(data, names, strict=True)]
    record = orjson.dumps({"body": {**body, "data": data}, "headers": headers, "fingerprint": fingerprint})
    # An exact-size copy: orjson's bytes keep its write buffer (about 8 KB for a 600-byte record),
    # and a day of replays is kept.
    return bytes(memoryview(record))


def refuse_another_request(stored: dict[str, Any], fingerprint: str) -> None:
    """A key remembered for one request and sent with another: 409 ``idempotency_key_reused``."""
    if stored.get("fingerprint") != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used with a different request",
                                  param="Idempotency-Key", code="idempotency_key_reused")


async def replayed(raw: bytes, fingerprint: str, store: ImageStore) -> tuple[dict[str, Any], dict[str, str]]:
    """The remembered body and headers, served again at no cost, to the same request only."""
    stored = orjson.loads(raw)
    refuse_another_request(stored, fingerprint)
    body = stored["body"]
    data = []
    for item in body.get("data", []):
        name = item.pop("image_ref", None)
        if name is not None:
            image = await store.get(name)
            if image is None:
                raise IdempotencyConflict(
                    "This Idempotency-Key's request was served and charged, but its images have expired "
                    "and cannot be replayed", param="Idempotency-Key", code="idempotent_replay_expired")
            item = {"b64_json": base64.b64encode(image).decode("ascii"), **item}
        data.append(item)
    headers = {**stored["headers"], "x-boltgate-idempotent-replay": "true",
               "x-boltgate-cost-usd": "0.000000", "x-boltgate-credits": "0"}
    return {**body, "data": data}, headers
