"""A request's partial images on their way from the GPU thread to the client's stream.

The pipeline calls ``PreviewRequest.send`` on the GPU thread after each chosen step; that hands
the small latent preview to the event loop, which scales and encodes it on the batcher's encoder
threads and offers it to the request's ``core.previews.PreviewSink``. Each partial image waits
for the one before it, and the request's finished image waits for the last (``flushed``), so a
client sees them in order. A partial image that fails to encode is skipped: it is a courtesy,
never a reason to fail the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from backends.local.encoding import AnyImage, RawImage, encode_preview
from backends.local.schedule import img2img_schedule
from core.previews import PreviewSink, preview_steps
from core.request import ImageRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    """Partial images one request of a batch wants: after which steps, and where they go."""

    after_steps: tuple[int, ...]
    send: Callable[[RawImage], None]
    """Takes the request's first image as the step left it; safe to call from the GPU thread."""


@runtime_checkable
class PreviewingPipeline(Protocol):
    """A batch pipeline that can also show partial images while it runs (the diffusers one)."""

    def run(self, requests: Sequence[ImageRequest]) -> Sequence[Sequence[AnyImage]]: ...

    def run_with_previews(self, requests: Sequence[ImageRequest],
                          previews: Sequence[PreviewRequest | None]) -> Sequence[Sequence[AnyImage]]: ...


@dataclass(eq=False, slots=True)
class PartialImages:
    """One request's partial images: where they go, and the last one still being encoded."""

    request: ImageRequest
    sink: PreviewSink
    _last: asyncio.Task[None] | None = field(default=None, init=False)

    def preview_request(self, loop: asyncio.AbstractEventLoop, encoders: Executor,
                        tasks: set[asyncio.Task[None]]) -> PreviewRequest | None:
        """What to ask the pipeline for; None when nothing can be shown (a single denoising step).
        ``tasks`` keeps the encoding tasks alive until they are done."""
        steps = preview_steps(denoising_steps(self.request), self.sink.wanted)
        if not steps:
            return None

        def on_loop(image: RawImage) -> None:
            self._last = asyncio.create_task(self._offer(image, self._last, encoders))
            tasks.add(self._last)
            self._last.add_done_callback(tasks.discard)

        def from_gpu_thread(image: RawImage) -> None:
            loop.call_soon_threadsafe(on_loop, image)

        return PreviewRequest(steps, from_gpu_thread)

    async def flushed(self) -> None:
        """Return once every partial image sent so far has been offered (or skipped)."""
        if self._last is not None:
            await self._last

    async def _offer(self, image: RawImage, before: asyncio.Task[None] | None, encoders: Executor) -> None:
        if before is not None:
            await before
        request = self.request
        try:
            encoded = await asyncio.get_running_loop().run_in_executor(
                encoders, encode_preview, image, request.width, request.height, request.output_format)
        except Exception:
            log.exception("encoding a partial image failed")
            return
        self.sink.offer(encoded)


def denoising_steps(request: ImageRequest) -> int:
    """The steps the pipeline runs for ``request``: all of them, or for an edit those its
    ``strength`` leaves (``schedule.img2img_schedule``); the pipeline counts the steps it runs."""
    if request.init_image is None:
        return request.steps
    return img2img_schedule(request.steps, request.strength).denoising_steps
