"""Settings of the self-hosted backend: where the weights are, which device, which speed levers.

Every default serves one machine: CUDA when there is one (fp16, the fp16-fix VAE), else the CPU
(fp32), every step count preloaded, dynamic batching of up to 4 images. channels_last and fused
QKV only pay off on a GPU and are skipped with a log line on the CPU; ``torch.compile`` is off
by default and, when on, compiles only the warmed sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backends.local.checkpoints import SUPPORTED_STEPS
from core.request import MAX_SIDE, MIN_SIDE

Device = Literal["auto", "cuda", "cpu"]
DType = Literal["auto", "float16", "bfloat16", "float32"]


class LocalBackendConfig(BaseModel):
    """How to load and run SDXL-Lightning on this machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_dir: Path | None = None
    """A local directory (``base/`` and ``lightning/``, see ``checkpoints``); None: the HF hub."""
    base_model_id: str = "stabilityai/stable-diffusion-xl-base-1.0"
    lightning_repo: str = "ByteDance/SDXL-Lightning"
    hub_variant: str | None = "fp16"
    """Weights variant fetched from the hub for half precision (the SDXL base repo has ``fp16``)."""
    device: Device = "auto"
    dtype: DType = "auto"
    """``auto``: float16 on CUDA, float32 on the CPU (half precision on the CPU falls back to fp32)."""
    preload_steps: tuple[int, ...] = (1, 2, 4, 8)
    """Step counts whose UNet loads at start: the only ones served (a request for another is refused
    so the router fails over; weights never load during a request). About 5 GB each in fp16."""
    fp16_fix_vae: bool | Literal["auto"] = "auto"
    """Decode with a VAE that runs in fp16 without overflowing (about twice as fast on a GPU as the base
    VAE, which must run in fp32). ``auto``: when the model runs in float16 (CUDA), falling back to
    the base VAE in fp32 with a warning when it cannot be loaded; ``true``: always, or fail to start."""
    fp16_fix_vae_id: str = "madebyollin/sdxl-vae-fp16-fix"
    """Hub id or local path of that VAE; ``model_dir/vae-fp16-fix`` wins when it exists."""
    sdpa: bool = True
    """PyTorch's scaled-dot-product attention (False: diffusers' classic attention)."""
    channels_last: bool = True
    compile_unet: bool = False
    """``torch.compile`` the UNet for the ``warmup_sizes`` (see ``compiled``): other sizes run eagerly."""
    compile_vae: bool = False
    """``torch.compile`` of the VAE decoder: at 4 steps and 1024x1024 it costs as much as the UNet."""
    compile_mode: str = "max-autotune"
    compile_backend: str = "inductor"
    """``torch.compile`` backend (``eager`` generates no kernels: what the CPU tests use to exercise the path)."""
    compile_cache_dir: Path | None = None
    """Where Inductor and Triton keep their caches (a persistent volume makes restarts compile fast);
    None: their defaults (``TORCHINDUCTOR_CACHE_DIR``, ``TRITON_CACHE_DIR``, else under /tmp and ~)."""
    fuse_qkv: bool = False
    warmup: bool = True
    """Run each preloaded step count once at start so no request pays loading or compilation."""
    warmup_sizes: tuple[tuple[int, int], ...] = ((1024, 1024),)
    """Sizes (``WIDTHxHEIGHT``, comma-separated) warmed at start, at every batch size when compiled.
    With ``torch.compile`` they are the only sizes that run compiled; any other size runs eagerly
    (slower, never failing, counted in ``boltgate_worker_eager_fallbacks_total``)."""
    max_batch_size: int = Field(default=4, ge=1, le=32)
    """Most images in one pipeline call."""
    batch_window_ms: float = Field(default=10.0, ge=0.0, le=1000.0)
    """How long the first request of a batch waits for compatible company."""
    max_queue: int = Field(default=64, ge=1)
    """Requests waiting beyond this are refused (503 + Retry-After) so the router fails over."""
    auth_token_env: str | None = "BOLTGATE_WORKER_TOKEN"
    """Environment variable holding the worker's shared token: when it is set, ``/v1/generate`` requires
    ``Authorization: Bearer <token>`` (the gateway sends its route key, ``WORKER_API_KEY`` by default).
    Without a token the worker only listens on a loopback address."""
    metrics_token_env: str | None = "BOLTGATE_WORKER_METRICS_TOKEN"
    """Environment variable holding a bearer token for ``/metrics``: when it is set, ``/metrics``
    requires ``Authorization: Bearer <token>`` (401 otherwise), so a scraper needs no generate
    token and whoever reaches the port cannot read the pool's load. Unset: ``/metrics`` is open."""
    unready_after_failures: int = Field(default=3, ge=1)
    """Consecutive failed requests (the pipeline raised on them alone) that make ``/readyz`` answer 503."""
    restart_after_failures: int = Field(default=10, ge=1)
    """Consecutive failed requests that make ``/healthz`` answer 503, so Kubernetes restarts the worker."""
    probe_interval_s: float = Field(default=15.0, gt=0)
    """While not ready after failures, a small probe image runs this often; one success makes it ready."""

    @field_validator("preload_steps", mode="before")
    @classmethod
    def _parse_steps(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    @field_validator("warmup_sizes", mode="before")
    @classmethod
    def _parse_sizes(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.replace(" ", "").split(",") if part]
        if isinstance(value, list | tuple):
            return tuple(_size(item) for item in value)
        return value

    @field_validator("warmup_sizes")
    @classmethod
    def _servable_sizes(cls, value: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        if not value:
            raise ValueError("warm up at least one size")
        for width, height in value:
            for side in (width, height):
                if not MIN_SIDE <= side <= MAX_SIDE or side % 8:
                    raise ValueError(f"size {width}x{height}: sides are multiples of 8 in {MIN_SIDE}-{MAX_SIDE}")
        return tuple(dict.fromkeys(value))

    @field_validator("preload_steps")
    @classmethod
    def _known_steps(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        unknown = sorted(set(value) - SUPPORTED_STEPS)
        if unknown:
            raise ValueError(f"no Lightning checkpoint for {unknown} steps; use {sorted(SUPPORTED_STEPS)}")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _restart_after_unready(self) -> LocalBackendConfig:
        if self.restart_after_failures < self.unready_after_failures:
            raise ValueError("restart_after_failures must be at least unready_after_failures")
        return self

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> LocalBackendConfig:
        """Build from a route's string options (``preload_steps = "1,4"``, ``fuse_qkv = "true"``)."""
        return cls.model_validate(dict(options))


def _size(item: object) -> object:
    """``"1024x768"`` as ``(1024, 768)``; pairs pass through for pydantic to check."""
    if isinstance(item, str):
        width, separator, height = item.lower().partition("x")
        if not separator or not width.isdigit() or not height.isdigit():
            raise ValueError(f"size {item!r} is not WIDTHxHEIGHT")
        return int(width), int(height)
    return item
