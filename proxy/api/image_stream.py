"""``stream: true`` on ``/v1/images/generations`` and ``/v1/images/edits``: server-sent events
in OpenAI's shape.

``partial_images`` (0-3) ``image_generation.partial_image`` events (``image_edit.partial_image``
for an edit), each a partial image in ``b64_json`` with its ``partial_image_index``, then one
``image_generation.completed`` (``image_edit.completed``) event with the image; the OpenAI SDK's
``client.images.generate(..., stream=True)`` and ``client.images.edit(..., stream=True)``
iterate them unchanged (``openai.types.ImageGenStreamEvent``, ``ImageEditStreamEvent``). Partial
images come from a backend that can show its progress (the in-process pipeline, through
``core.previews``, an edit's as well as a generation's); a vendor sends the completed event
alone. ``usage`` is OpenAI's token shape, all zeros (no backend here bills by token); what the
request cost is in ``billing``, as in a JSON answer.

The response starts with its first event: an error before that (bad key, no budget, no route)
is a plain HTTP error in OpenAI's envelope, as without streaming; an error after it is an
``error`` event (``{"type": "error", "error": {message, type, param, code}}``, which the SDK
raises as ``APIError``), and the stream ends. Money goes through ``Gateway.generate`` as for any
request: charged once, when the image is ready, before the completed event is sent; a stream
that fails or whose client leaves before then is not charged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from litestar import Response
from litestar.response import Stream

from core.errors import BoltgateError, InvalidRequest
from core.previews import previews_to
from core.request import ImageRequest
from pricing.keys import KeyRecord
from proxy.api.disconnect import unless_disconnected
from proxy.gateway import Gateway, ImagesResponse
from proxy.routing.choice import DEFAULT_CHOICE, RoutingChoice

log = logging.getLogger(__name__)

NO_TOKENS = {"input_tokens": 0, "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
             "output_tokens": 0, "total_tokens": 0}
"""OpenAI's ``usage`` of a completed event: SDXL-Lightning bills no tokens anywhere."""
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
GENERATION_EVENTS = "image_generation"
EDIT_EVENTS = "image_edit"
"""The prefixes of OpenAI's event types: ``image_generation.*`` for generations
(``openai.types.ImageGenStreamEvent``), ``image_edit.*`` for edits (``ImageEditStreamEvent``)."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    partial_images: int = 0


def streamable(request: ImageRequest) -> ImageRequest:
    """``request`` as a stream serves it: one image, inlined as base64."""
    if request.n != 1:
        raise InvalidRequest("A stream carries one image: 'n' must be 1 with 'stream': true", param="n")
    if "response_format" in request.model_fields_set and request.response_format != "b64_json":
        raise InvalidRequest("A stream carries the image as 'b64_json'; 'response_format': 'url' cannot stream",
                             param="response_format")
    return request.model_copy(update={"response_format": "b64_json"})


@dataclass(frozen=True, slots=True)
class _Event:
    body: dict[str, Any]
    final: bool = False
    error: BoltgateError | None = None
    headers: dict[str, str] | None = None

    def encode(self) -> bytes:
        kind: str = self.body["type"]
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(self.body) + b"\n\n"


class _EventChannel:
    """The events of one stream, in order; the ``PreviewSink`` the backend offers partial images to."""

    def __init__(self, request: ImageRequest, wanted: int, events: str) -> None:
        self.request = request
        self._wanted = wanted
        self._prefix = events
        """``GENERATION_EVENTS`` or ``EDIT_EVENTS``."""
        self._sent = 0
        self._closed = False
        self._events: asyncio.Queue[_Event] = asyncio.Queue()

    @property
    def wanted(self) -> int:
        return self._wanted

    def offer(self, image: bytes) -> None:
        if self._closed or self._sent >= self._wanted:
            return
        self._events.put_nowait(_Event({**self._common("partial_image"),
                                        "b64_json": base64.b64encode(image).decode("ascii"),
                                        "partial_image_index": self._sent}))
        self._sent += 1

    def completed(self, served: ImagesResponse) -> None:
        self._closed = True
        body = served.body
        b64 = body["data"][0]["b64_json"]
        if isinstance(b64, (bytes, memoryview)):  # a vendor's base64 passed through as a view (proxy.images.body)
            b64 = bytes(b64).decode("ascii")
        event = {**self._common("completed"), "b64_json": b64, "usage": NO_TOKENS,
                 "billing": body.get("billing", body.get("usage"))}
        if "seed" in body:
            event["seed"] = body["seed"]
        self._events.put_nowait(_Event(event, final=True, headers=served.headers))

    def failed(self, error: BoltgateError) -> None:
        self._closed = True
        self._events.put_nowait(_Event({"type": "error", **error.body()}, final=True, error=error))

    async def next(self) -> _Event:
        return await self._events.get()

    def _common(self, kind: str) -> dict[str, Any]:
        return {"type": f"{self._prefix}.{kind}", "created_at": int(time.time()), "background": "opaque",
                "quality": "auto", "output_format": self.request.output_format, "size": self.request.size}


async def stream_images(request: Any, gateway: Gateway, key: KeyRecord, image_request: ImageRequest,
                        options: StreamOptions, routing: RoutingChoice = DEFAULT_CHOICE) -> Response[Any]:
    """Serve ``image_request`` as a stream of events (see the module's docstring)."""
    image_request = streamable(image_request)
    prefix = EDIT_EVENTS if image_request.is_edit else GENERATION_EVENTS
    channel = _EventChannel(image_request, options.partial_images, prefix)

    async def generate() -> None:
        with previews_to(channel if options.partial_images else None):
            try:
                served = await gateway.generate(image_request, base_url=gateway.links.for_request(request), key=key,
                                                idempotency_key=request.headers.get("idempotency-key"),
                                                routing=routing)
            except BoltgateError as error:
                channel.failed(error)
            except Exception as error:  # after the first event there is no other way to say it
                log.exception("a streamed request failed unexpectedly")
                channel.failed(BoltgateError(f"The gateway failed unexpectedly: {type(error).__name__}"))
            else:
                channel.completed(served)

    task = asyncio.create_task(generate(), name="boltgate-stream")
    try:
        first = await unless_disconnected(request, channel.next())
    except BaseException:
        await _stop(task)
        raise
    if first.error is not None:  # nothing sent yet: a plain HTTP error, as without streaming
        await _stop(task)
        raise first.error

    async def events() -> AsyncIterator[bytes]:
        event = first
        try:
            while True:
                yield event.encode()
                if event.final:
                    return
                event = await channel.next()
        finally:
            await _stop(task)

    return Stream(events(), media_type="text/event-stream", headers={**STREAM_HEADERS, **(first.headers or {})})


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel the generation if it still runs (the client left): its hold is released, nothing charged."""
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
