"""The local engine: load and warm the pipeline off the event loop, then serve through the batcher.

Shared by the in-process backend and the GPU worker service, so both refuse, batch and account
GPU-seconds the same way. The pipeline is built by a factory (the real loader by default), which
keeps torch out of any import of this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

from backends.base import Capabilities, LoadState
from backends.local.batching import BatchObserver, BatchOutcome, BatchPipeline, DynamicBatcher
from backends.local.checkpoints import SUPPORTED_STEPS
from backends.local.config import LocalBackendConfig
from backends.local.health import FailureStreak
from core.deadline import Deadline
from core.errors import BoltgateError, InvalidRequest, NotReady
from core.request import MIN_SIDE, ImageRequest

log = logging.getLogger(__name__)

LOCAL_CAPABILITIES = Capabilities(
    max_steps=max(SUPPORTED_STEPS),
    fixed_steps=SUPPORTED_STEPS,
    image_to_image=True,
    negative_prompt=False,  # Lightning runs without guidance, where a negative prompt changes nothing
    max_side=1536,
    output_formats=frozenset({"png", "jpeg", "webp"}),
)


class ServingPipeline(BatchPipeline, Protocol):
    """A loaded, warmed pipeline: the batcher's ``run`` plus what the worker reports."""

    @property
    def device(self) -> str: ...

    def memory_bytes(self) -> int: ...

    def eager_fallbacks(self) -> Mapping[tuple[str, str], int]:
        """Calls of a compiled module that ran eagerly, by (module, reason) (see ``compiled``)."""
        ...


PipelineFactory = Callable[[LocalBackendConfig], ServingPipeline]


def load_real_pipeline(config: LocalBackendConfig) -> ServingPipeline:
    """The default factory: the diffusers pipeline, loaded and warmed up (imports torch)."""
    from backends.local.pipeline import load_warm_pipeline

    return load_warm_pipeline(config)


class LocalEngine:
    """One pipeline behind one dynamic batcher."""

    def __init__(self, config: LocalBackendConfig, *, factory: PipelineFactory = load_real_pipeline,
                 observer: BatchObserver | None = None) -> None:
        self.config = config
        self.capabilities = replace(LOCAL_CAPABILITIES, fixed_steps=frozenset(config.preload_steps),
                                    max_steps=max(config.preload_steps))
        """What this engine serves: only the step counts it loads at start."""
        self._factory = factory
        self._observer = observer
        self.pipeline: ServingPipeline | None = None
        self.batcher: DynamicBatcher | None = None
        self.load_error: BaseException | None = None
        self._loading: asyncio.Task[None] | None = None
        self._gpu_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="boltgate-gpu")
        """Loads, warms up and serves: CUDA graphs and the caching allocator's pools are per thread."""
        self.health = FailureStreak(config.unready_after_failures, config.restart_after_failures)
        self._probing: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Loaded, warmed up, and not failing request after request."""
        return self.batcher is not None and self.health.healthy

    @property
    def alive(self) -> bool:
        """False once the model failed to load or the pipeline failed too often in a row: restart me."""
        return self.load_error is None and self.health.alive

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

    def eager_fallbacks(self) -> Mapping[tuple[str, str], int]:
        return self.pipeline.eager_fallbacks() if self.pipeline is not None else {}

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
            loop = asyncio.get_running_loop()
            pipeline = await loop.run_in_executor(self._gpu_thread, self._factory, self.config)
        except Exception as exc:
            log.exception("loading the local pipeline failed")
            self.load_error = exc
            return
        self.pipeline = pipeline
        self.batcher = DynamicBatcher(
            pipeline, max_batch_size=self.config.max_batch_size, batch_window_ms=self.config.batch_window_ms,
            max_queue=self.config.max_queue, observer=self._observer, gpu_thread=self._gpu_thread,
            health=self.health,
        )
        self._probing = asyncio.create_task(self._probe_while_failing(), name="boltgate-local-probe")
        log.info("local pipeline ready on %s", pipeline.device)

    async def _probe_while_failing(self) -> None:
        """Out of rotation after failures, no request would come to prove the worker well again: a
        small probe image runs every ``probe_interval_s`` until one succeeds (or liveness gives up)."""
        probe = ImageRequest(prompt="health probe", width=MIN_SIDE, height=MIN_SIDE, n=1, seed=0,
                             steps=min(self.config.preload_steps), output_format="jpeg")
        while True:
            await asyncio.sleep(self.config.probe_interval_s)
            if self.batcher is None or self.health.healthy or not self.health.alive:
                continue
            try:
                await self.batcher.submit(probe)
                log.info("the health probe succeeded; the worker is ready again")
            except BoltgateError as exc:
                log.warning("the health probe failed (%d failures in a row): %s", self.health.consecutive, exc)

    async def generate(self, request: ImageRequest, deadline: Deadline | None = None) -> BatchOutcome:
        """The request's images, batched with compatible company; 400 when unservable here, dropped
        unrun when ``deadline`` passes while it waits."""
        refusal = self.capabilities.refusal(request)
        if refusal is not None:
            raise InvalidRequest(f"the local backend cannot serve this request: {refusal}",
                                 param="steps" if "steps" in refusal else None)
        if self.batcher is None:
            if self.load_error is not None:
                raise NotReady(f"the local model failed to load: {self.load_error}", retry_after=60.0)
            raise NotReady("the local model is still loading")
        return await self.batcher.submit(request, deadline)

    async def aclose(self) -> None:
        for task in (self._loading, self._probing):
            if task is not None and not task.done():
                task.cancel()
        if self.batcher is not None:
            await self.batcher.aclose()
        self._gpu_thread.shutdown(wait=False, cancel_futures=True)
