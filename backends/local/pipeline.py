"""SDXL-Lightning on this machine: text-to-image and image-to-image, one UNet per step count.

The base components (text encoders, tokenizers, VAE) load once; the Lightning UNet of every
step count in ``preload_steps`` loads at start, each with its own trailing-Euler scheduler, and
no weights ever load while a request waits (another step count is refused, so the router fails
over). The diffusers pipelines stop at latents: ``vae.VaeCodec`` decodes them at a fixed dtype
into RGB bytes, and PNG/JPEG/WebP encoding happens on the batcher's threads.

Every image gets its own CPU ``torch.Generator`` seeded as ``seeds`` derives it (image 0 with the
request's seed, the others with a hash of seed and index, so no two requests share an image), so
the initial noise of an image depends only on its seed, never on the batch it ran in or the
device (the denoised pixels may still differ by float rounding between batch sizes).

Lightning is distilled without classifier-free guidance: the pipeline always runs at
``guidance_scale=0``, where a negative prompt has no effect, so neither is passed on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
from PIL import Image

from backends.local.checkpoints import LightningCheckpoint, checkpoint_for
from backends.local.compiled import EagerFallbacks, ensure_recompile_room, use_compile_cache
from backends.local.config import LocalBackendConfig
from backends.local.encoding import RawImage, decode_init_image
from backends.local.loader import (
    BaseComponents,
    WeightSource,
    lightning_scheduler,
    load_base_components,
    load_lightning_unet,
    resolve_device,
    resolve_dtype,
)
from backends.local.partial_images import PreviewRequest
from backends.local.preview import LatentPreviewer
from backends.local.schedule import img2img_schedule
from backends.local.seeds import seeds_of
from backends.local.speed import compiled_parts, log_skipped_levers, prepare_unet, prepare_vae
from backends.local.vae import VaeCodec
from core.errors import InvalidRequest
from core.request import ImageRequest

log = logging.getLogger(__name__)

_diffusers: Any = diffusers  # partly annotated: its pipelines are used untyped

StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]
"""diffusers' ``callback_on_step_end(pipeline, step_index, timestep, tensors) -> tensors``."""


def _generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]


@dataclass(slots=True)
class StepPipelines:
    """The two diffusers pipelines of one step count, sharing every component."""

    checkpoint: LightningCheckpoint
    path: Path
    text_to_image: Any
    image_to_image: Any

    @property
    def scheduler(self) -> Any:
        return self.text_to_image.scheduler


class LightningPipeline:
    """SDXL base components plus the Lightning UNets loaded so far."""

    def __init__(self, config: LocalBackendConfig, source: WeightSource, components: BaseComponents,
                 device: torch.device, dtype: torch.dtype) -> None:
        self.config = config
        self.source = source
        self.components = components
        self.torch_device = device
        self.dtype = dtype
        self._by_steps: dict[int, StepPipelines] = {}
        self.fallbacks = EagerFallbacks()
        prepare_vae(components.vae, config, device, self.fallbacks)
        self.vae = VaeCodec(components.vae, device)
        self._previewer: LatentPreviewer | None = None

    @classmethod
    def load(cls, config: LocalBackendConfig) -> LightningPipeline:
        """Load base components and the preloaded step counts (blocking: call it off the event loop)."""
        device = resolve_device(config)
        dtype = resolve_dtype(config, device)
        log.info("local pipeline on %s in %s", device, dtype)
        log_skipped_levers(config, device)
        if config.compile_cache_dir is not None and (config.compile_unet or config.compile_vae):
            use_compile_cache(config.compile_cache_dir)
        source = WeightSource(config, dtype)
        components = load_base_components(source, device, dtype)
        pipeline = cls(config, source, components, device, dtype)
        for steps in config.preload_steps:
            pipeline._by_steps[steps] = pipeline._build(steps)
        return pipeline

    @property
    def device(self) -> str:
        return self.torch_device.type

    @property
    def loaded_steps(self) -> tuple[int, ...]:
        return tuple(sorted(self._by_steps))

    def for_steps(self, steps: int) -> StepPipelines:
        """The pipelines for ``steps``; refused (404, so the router fails over) when not loaded at start."""
        loaded = self._by_steps.get(steps)
        if loaded is None:
            raise InvalidRequest(f"steps {steps} not loaded on this worker (loaded: {list(self.loaded_steps)})",
                                 param="steps", status_code=404, code="steps_not_loaded")
        return loaded

    def _build(self, steps: int) -> StepPipelines:
        try:
            checkpoint = checkpoint_for(steps)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="steps") from exc
        path = self.source.checkpoint_path(checkpoint)
        started = time.perf_counter()
        unet = load_lightning_unet(path, self.components.unet_config, self.torch_device, self.dtype)
        unet = prepare_unet(unet, self.config, self.torch_device, self.fallbacks)
        parts = self.components
        text_to_image = _diffusers.StableDiffusionXLPipeline(
            vae=parts.vae, text_encoder=parts.text_encoder, text_encoder_2=parts.text_encoder_2,
            tokenizer=parts.tokenizer, tokenizer_2=parts.tokenizer_2, unet=unet,
            scheduler=lightning_scheduler(parts.scheduler_config, checkpoint),
        )
        image_to_image = _diffusers.StableDiffusionXLImg2ImgPipeline(**text_to_image.components)
        for pipe in (text_to_image, image_to_image):
            pipe.set_progress_bar_config(disable=True)
        log.info("loaded %s in %.1f s", checkpoint.filename, time.perf_counter() - started)
        return StepPipelines(checkpoint, path, text_to_image, image_to_image)

    def run(self, requests: Sequence[ImageRequest]) -> list[list[RawImage]]:
        """Serve one batch (same size and steps; an edit alone): each request's images, in order.

        Out of GPU memory, the allocator's cached blocks are released before the error goes up, so the
        batcher's retry of each half of the batch starts from free memory.
        """
        return self.run_with_previews(requests, [None] * len(requests))

    def run_with_previews(self, requests: Sequence[ImageRequest],
                          previews: Sequence[PreviewRequest | None]) -> list[list[RawImage]]:
        """``run``, sending each request that asks for them partial images of its first image
        after the steps it names (a cheap latent preview, ``preview.LatentPreviewer``)."""
        try:
            return self._run(requests, self._step_callback(requests, previews))
        except torch.OutOfMemoryError:
            if self.torch_device.type == "cuda":
                torch.cuda.empty_cache()
            raise

    def _step_callback(self, requests: Sequence[ImageRequest],
                       previews: Sequence[PreviewRequest | None]) -> StepCallback | None:
        """diffusers' ``callback_on_step_end`` sending the partial images, or None when none is wanted."""
        wanted: list[tuple[int, PreviewRequest]] = []
        first_image = 0
        for request, preview in zip(requests, previews, strict=True):
            if preview is not None:
                wanted.append((first_image, preview))
            first_image += request.n
        if not wanted:
            return None
        if self._previewer is None:
            self._previewer = LatentPreviewer.fit(self.vae, int(self.components.vae.config.latent_channels))
        previewer = self._previewer

        def on_step_end(pipe: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            done = index + 1
            sigmas = getattr(pipe.scheduler, "sigmas", None)
            at = getattr(pipe.scheduler, "step_index", None)  # an edit starts part-way down the schedule
            at = done if at is None else int(at)
            sigma = float(sigmas[at]) if sigmas is not None and at < len(sigmas) else 0.0
            for image, preview in wanted:
                if done in preview.after_steps:
                    preview.send(previewer.preview(tensors["latents"][image], sigma))
            return tensors

        return on_step_end

    def _run(self, requests: Sequence[ImageRequest], on_step: StepCallback | None = None) -> list[list[RawImage]]:
        first = requests[0]
        if any((r.width, r.height, r.steps, r.is_edit) != (first.width, first.height, first.steps, False)
               for r in requests[1:]):
            raise ValueError("a batch mixes sizes, step counts or edits")
        if first.init_image is not None:
            if len(requests) > 1:
                raise ValueError("an image-to-image request runs alone")
            init = decode_init_image(first.init_image, first.width, first.height)
            return [self.image_to_image([first.prompt] * first.n, seeds_of(first), init,
                                        first.strength, first.steps, on_step)]
        prompts = [r.prompt for r in requests for _ in range(r.n)]
        seeds = [seed for r in requests for seed in seeds_of(r)]
        images = self.text_to_image(prompts, seeds, first.width, first.height, first.steps, on_step)
        split: list[list[RawImage]] = []
        for request in requests:
            split.append(images[: request.n])
            images = images[request.n:]
        return split

    def text_to_image(self, prompts: Sequence[str], seeds: Sequence[int], width: int, height: int,
                      steps: int, on_step: StepCallback | None = None) -> list[RawImage]:
        pipes = self.for_steps(steps)
        progress: dict[str, Any] = {"callback_on_step_end": on_step} if on_step is not None else {}
        result = pipes.text_to_image(
            prompt=list(prompts), num_inference_steps=steps, guidance_scale=0.0,
            width=width, height=height, generator=_generators(seeds), output_type="latent", **progress,
        )
        return self.vae.decode(result.images)

    def image_to_image(self, prompts: Sequence[str], seeds: Sequence[int], init: Image.Image,
                       strength: float, steps: int, on_step: StepCallback | None = None) -> list[RawImage]:
        pipes = self.for_steps(steps)
        progress: dict[str, Any] = {"callback_on_step_end": on_step} if on_step is not None else {}
        schedule = img2img_schedule(steps, strength)
        if schedule.rounded:
            log.info("image-to-image strength %.3f served as %.3f: %d of the %d distilled steps",
                     strength, schedule.strength, schedule.denoising_steps, steps)
        result = pipes.image_to_image(
            prompt=list(prompts), image=self.vae.encode(init, self.dtype), strength=schedule.strength,
            num_inference_steps=steps, guidance_scale=0.0, generator=_generators(seeds),
            output_type="latent", **progress,
        )
        return self.vae.decode(result.images)

    def warm_up(self) -> None:
        """Run each loaded step count at each ``warmup_sizes`` before serving; compiled: at every batch size.

        This is the only time anything compiles (``compiled.ShapeCompiled``): afterwards the warmed
        shapes run compiled and any other shape eagerly. Call it on the thread that will serve
        (CUDA graphs recorded by a compiled module belong to the thread that recorded them).
        """
        parts = compiled_parts(self.components.vae, *(pipes.text_to_image.unet for pipes in self._by_steps.values()))
        batch_sizes = range(1, self.config.max_batch_size + 1) if parts else range(1, 2)
        if parts:
            ensure_recompile_room(len(self.config.warmup_sizes) * len(batch_sizes))
        for part in parts:
            part.set_warming(True)
        runs = 2 if parts else 1  # compiled with CUDA graphs: the first call compiles, the second records
        try:
            for steps in self.loaded_steps:
                for width, height in self.config.warmup_sizes:
                    for size in batch_sizes:
                        started = time.perf_counter()
                        for _ in range(runs):
                            self.text_to_image(["warm-up"] * size, list(range(size)), width, height, steps)
                        log.info("warm-up %d steps, batch %d, %dx%d: %.2f s", steps, size, width, height,
                                 time.perf_counter() - started)
        finally:
            for part in parts:
                part.set_warming(False)

    def eager_fallbacks(self) -> dict[tuple[str, str], int]:
        """Calls of a compiled module that ran eagerly, by (module, reason)."""
        return dict(self.fallbacks.snapshot())

    def memory_bytes(self) -> int:
        """GPU memory held by tensors (0 on the CPU)."""
        if self.torch_device.type != "cuda":
            return 0
        return int(torch.cuda.memory_allocated(self.torch_device))


def load_warm_pipeline(config: LocalBackendConfig) -> LightningPipeline:
    """Load, then warm up when configured: what the engine runs in a thread at start."""
    pipeline = LightningPipeline.load(config)
    if config.warmup:
        pipeline.warm_up()
    return pipeline
