"""The GPU speed levers, each one a setting: attention kernel, memory layout, fused QKV, compilation.

Order matters: the attention processor is chosen first, fusing QKV then swaps in the fused
processor, and compilation comes last so it traces the final modules. channels_last, fused QKV
and ``torch.compile`` only pay off on CUDA; on the CPU they are skipped with one log line (a
compiled UNet on the CPU would spend minutes compiling to gain little).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from backends.local.config import LocalBackendConfig

log = logging.getLogger(__name__)


def _cuda_only_levers(config: LocalBackendConfig) -> list[str]:
    names = ("channels_last", "fuse_qkv", "compile_unet", "compile_vae")
    return [name for name in names if getattr(config, name)]


def log_skipped_levers(config: LocalBackendConfig, device: torch.device) -> None:
    skipped = _cuda_only_levers(config)
    if device.type != "cuda" and skipped:
        log.info("speed levers %s need CUDA; skipped on %s", ", ".join(skipped), device.type)


def _set_attention(module: Any, sdpa: bool) -> None:
    from diffusers.models import attention_processor

    processors: Any = attention_processor  # partly annotated: used untyped
    module.set_attn_processor(processors.AttnProcessor2_0() if sdpa else processors.AttnProcessor())


def prepare_unet(unet: Any, config: LocalBackendConfig, device: torch.device) -> Any:
    """The UNet with the configured levers applied (possibly a compiled wrapper around it)."""
    _set_attention(unet, config.sdpa)
    if device.type != "cuda":
        return unet
    if config.channels_last:
        unet.to(memory_format=torch.channels_last)
    if config.fuse_qkv:
        unet.fuse_qkv_projections()
    if config.compile_unet:
        log.info("compiling the UNet (mode %s); the warm-up pays for it", config.compile_mode)
        return torch.compile(unet, mode=config.compile_mode, fullgraph=True)
    return unet


def prepare_vae(vae: Any, config: LocalBackendConfig, device: torch.device) -> None:
    """Apply the levers to the shared VAE in place (its decoder is the one compiled)."""
    _set_attention(vae, config.sdpa)
    if device.type != "cuda":
        return
    if config.channels_last:
        vae.to(memory_format=torch.channels_last)
    if config.fuse_qkv:
        vae.fuse_qkv_projections()
    if config.compile_vae:
        log.info("compiling the VAE decoder (mode %s)", config.compile_mode)
        vae.decode = torch.compile(vae.decode, mode=config.compile_mode, fullgraph=True)
