"""The VAE's two jobs at one fixed dtype: latents to RGB bytes, and an init image to latents.

diffusers' SDXL pipelines upcast an fp16 VAE to fp32 around every decode (its weights overflow in
half precision) and cast it back afterwards: two full weight conversions per call, and a compiled
decoder that sees a new dtype each time. Here the pipelines stop at latents and the VAE keeps one
dtype for its whole life: fp16 with the fp16-fix VAE (the default on CUDA), else fp32.

Pixels become ``uint8`` on the device, land in a reused pinned host buffer with one copy, and leave
as ``RawImage`` bytes, so the GPU thread never builds PIL images; encoding happens elsewhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from backends.local.encoding import RawImage


class VaeCodec:
    """One VAE, its dtype fixed at load (never switched per call)."""

    def __init__(self, vae: Any, device: torch.device) -> None:
        self.vae = vae
        self.device = device
        self.dtype: torch.dtype = vae.dtype
        self.scaling_factor = float(vae.config.scaling_factor)
        self._pinned: dict[tuple[int, ...], torch.Tensor] = {}

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> list[RawImage]:
        """Latents of a batch (as the pipeline returns them) as RGB images."""
        image = self.vae.decode(latents.to(self.dtype) / self.scaling_factor, return_dict=False)[0]
        pixels = (image.float() / 2 + 0.5).clamp(0, 1).mul(255).round().to(torch.uint8)
        host = self._to_host(pixels.permute(0, 2, 3, 1).contiguous())
        _, height, width, _ = host.shape
        return [RawImage(width, height, host[index].numpy().tobytes()) for index in range(host.shape[0])]

    def _to_host(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return pixels
        buffer = self._pinned.get(tuple(pixels.shape))
        if buffer is None:
            buffer = self._pinned[tuple(pixels.shape)] = torch.empty(
                pixels.shape, dtype=torch.uint8, pin_memory=True)
        buffer.copy_(pixels, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return buffer

    @torch.inference_mode()
    def encode(self, image: Image.Image, dtype: torch.dtype) -> torch.Tensor:
        """The init image as scaled latents (the distribution's mode: one encode serves every seed)."""
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
        batch = pixels.to(self.device).permute(2, 0, 1).unsqueeze(0).to(self.dtype) / 127.5 - 1.0
        latents: torch.Tensor = self.vae.encode(batch).latent_dist.mode()
        return (latents * self.scaling_factor).to(dtype)
