"""The local engine: load and warm the pipeline off the event loop, then serve through the batcher.

Shared by the in-process backend and the GPU worker service, so both refuse, batch and account
GPU-seconds the same way. The pipeline is built by a factory (the real loader by default), which
keeps torch out of any import of this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from backends.base import Capabilities, LoadState
from backends.local.batching import BatchObserver, BatchOutcome, BatchPipeline, DynamicBatcher
from backends.local.checkpoints import SUPPORTED_STEPS
from backends.local.config import LocalBackendConfig
from core.errors import InvalidRequest, NotReady
from core.request import ImageRequest

log = logging.getLogger(__name__)

LOCAL_CAPABILITIES = Capabilities(
    max_steps=max(SUPPORTED_STEPS),
    fixed_steps=SUPPORTED_STEPS,
    image_to_image=True,
    max_side=1536,
    output_formats=frozenset({"png", "jpeg", "webp"}),
)


class ServingPipeline(BatchPipeline, Protocol):
    """A loaded, warmed pipeline: the batcher's ``run`` plus what the worker reports."""

    @property
    def device(self) -> str: ...

    def memory_bytes(self) -> int: ...


PipelineFactory = Callable[[LocalBackendConfig], ServingPipeline]


def load_real_pipeline(config: LocalBackendConfig) -> ServingPipeline:
    """The default factory: the diffusers pipeline, loaded and warmed up (imports torch)."""
    from backends.local.pipeline import load_warm_pipeline

    return load_warm_pipeline(config)


class LocalEngine:
    """One pipeline behind one dynamic batcher."""

    capabilities = LOCAL_CAPABILITIES

    def __init__(self, config: LocalBackendConfig, *, factory: PipelineFactory = load_real_pipeline,
                 observer: BatchObserver | None = None) -> None:
        self.config = config
        self._factory = factory
        self._observer = observer
        self.pipeline: ServingPipeline | None = None
        self.batcher: DynamicBatcher | None = None
        self.load_error: BaseException | None = None
        self._loading: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    @property
    def load_state(self) -> LoadState:
        if self.batcher is not None:
            return "ready"
        return "failed" if self.load_error is not None else "loading"

    @property
    def device(self) -> str:
        return self.pipeline.device if self.pipeline is not None else "unknown"

    def memory_bytes(self) -> int:
        return self.pipeline.memory_bytes() if self.pipeline is not None else 0

    def start_in_background(self) -> asyncio.Task[None]:
        """Begin loading (once); the task ends when the engine is ready or has failed."""
        if self._loading is None:
            self._loading = asyncio.create_task(self._load(), name="boltgate-local-load")
        return self._loading

    async def start(self) -> None:
        """Load and warm up (once); raises what loading raised."""
        await asyncio.shield(self.start_in_background())
        if self.load_error is not None:
            raise NotReady(f"the local model failed to load: {self.load_error}") from self.load_error

    async def _load(self) -> None:
        try:
            pipeline = await asyncio.to_thread(self._factory, self.config)
        except Exception as exc:
            log.exception("loading the local pipeline failed")
            self.load_error = exc
            return
        self.pipeline = pipeline
        self.batcher = DynamicBatcher(
            pipeline, max_batch_size=self.config.max_batch_size, batch_window_ms=self.config.batch_window_ms,
            max_queue=self.config.max_queue, observer=self._observer,
        )
        log.info("local pipeline ready on %s", pipeline.device)

    async def generate(self, request: ImageRequest) -> BatchOutcome:
        """The request's images, batched with compatible company; 400 when unservable here."""
        refusal = self.capabilities.refusal(request)
        if refusal is not None:
            raise InvalidRequest(f"the local backend cannot serve this request: {refusal}",
                                 param="steps" if "steps" in refusal else None)
        if self.batcher is None:
            if self.load_error is not None:
                raise NotReady(f"the local model failed to load: {self.load_error}", retry_after=60.0)
            raise NotReady("the local model is still loading")
        return await self.batcher.submit(request)

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        if self.batcher is not None:
            await self.batcher.aclose()
