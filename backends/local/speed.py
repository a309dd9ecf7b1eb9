"""The GPU speed levers, each one a setting: attention kernel, memory layout, fused QKV, compilation.

Order matters: the attention processor is chosen first, fusing QKV then swaps in the fused
processor, and compilation comes last so it traces the final modules. channels_last and fused
QKV only pay off on CUDA and are skipped on the CPU with one log line. ``torch.compile`` is
applied wherever it is asked for (on the CPU it is slow to compile and gains little; the tests
use the ``eager`` backend there), always through ``compiled.ShapeCompiled``, so it compiles only
at warm-up and never fails a request.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from backends.local.compiled import EagerFallbacks, ShapeCompiled, compiler
from backends.local.config import LocalBackendConfig

log = logging.getLogger(__name__)


def _cuda_only_levers(config: LocalBackendConfig) -> list[str]:
    return [name for name in ("channels_last", "fuse_qkv") if getattr(config, name)]


def log_skipped_levers(config: LocalBackendConfig, device: torch.device) -> None:
    skipped = _cuda_only_levers(config)
    if device.type != "cuda" and skipped:
        log.info("speed levers %s need CUDA; skipped on %s", ", ".join(skipped), device.type)
    if device.type != "cuda" and (config.compile_unet or config.compile_vae):
        log.info("torch.compile (backend %s) on %s: compiling is slow there and gains little",
                 config.compile_backend, device.type)


def _set_attention(module: Any, sdpa: bool) -> None:
    from diffusers.models import attention_processor

    processors: Any = attention_processor  # partly annotated: used untyped
    module.set_attn_processor(processors.AttnProcessor2_0() if sdpa else processors.AttnProcessor())


def prepare_unet(unet: Any, config: LocalBackendConfig, device: torch.device,
                 fallbacks: EagerFallbacks | None = None) -> Any:
    """The UNet with the configured levers applied (a ``ShapeCompiled`` around it when compiled)."""
    _set_attention(unet, config.sdpa)
    if device.type == "cuda" and config.channels_last:
        unet.to(memory_format=torch.channels_last)
    if device.type == "cuda" and config.fuse_qkv:
        unet.fuse_qkv_projections()
    if config.compile_unet:
        log.info("the UNet compiles at warm-up (mode %s, backend %s)", config.compile_mode, config.compile_backend)
        return ShapeCompiled(unet, name="unet", compile_module=compiler(config.compile_mode, config.compile_backend),
                             fallbacks=fallbacks or EagerFallbacks())
    return unet


def prepare_vae(vae: Any, config: LocalBackendConfig, device: torch.device,
                fallbacks: EagerFallbacks | None = None) -> None:
    """Apply the levers to the shared VAE in place (its decoder is the one compiled)."""
    _set_attention(vae, config.sdpa)
    if device.type == "cuda" and config.channels_last:
        vae.to(memory_format=torch.channels_last)
    if device.type == "cuda" and config.fuse_qkv:
        vae.fuse_qkv_projections()
    if config.compile_vae:
        log.info("the VAE decoder compiles at warm-up (mode %s, backend %s)", config.compile_mode,
                 config.compile_backend)
        vae.decoder = ShapeCompiled(vae.decoder, name="vae_decoder",
                                    compile_module=compiler(config.compile_mode, config.compile_backend),
                                    fallbacks=fallbacks or EagerFallbacks())


def compiled_parts(*modules: Any) -> list[ShapeCompiled]:
    """The ``ShapeCompiled`` wrappers among ``modules`` and their direct children."""
    found: list[ShapeCompiled] = []
    for module in modules:
        found += [part for part in (module, *module.children()) if isinstance(part, ShapeCompiled)]
    return found
