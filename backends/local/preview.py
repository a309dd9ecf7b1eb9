"""A cheap look at latents mid-denoising: a linear map from latent channels to RGB.

Decoding every partial image through the VAE would cost as much as a denoising step each (at 4
steps and 1024x1024 the decode costs as much as the UNet). Each latent pixel stands for an 8x8
patch, and its channels map to that patch's mean colour almost linearly, so a 4x3 matrix plus a
bias gives a recognisable preview at an eighth of the side for next to nothing. The map is
fitted once per VAE (least squares between random latents and their real decodes, averaged
over each 8x8 patch), so it holds for whatever VAE is loaded, the tiny test one included.

The latents a denoising step leaves still carry noise of strength ``sigma``; they are scaled by
``1 / sqrt(sigma^2 + 1)`` (the scheduler's own input scaling) so early previews are not washed out.
"""

from __future__ import annotations

import math

import torch

from backends.local.encoding import RawImage
from backends.local.vae import VaeCodec

_FIT_SIDE = 16
"""Latent side of the fitting batch (a 128x128 decode): a few milliseconds on a GPU."""


class LatentPreviewer:
    """Latents of one image -> a small RGB image (one pixel per latent pixel)."""

    def __init__(self, weights: torch.Tensor) -> None:
        self.weights = weights
        """``(channels + 1, 3)``: one row per latent channel, the last row the bias."""

    @classmethod
    @torch.inference_mode()
    def fit(cls, vae: VaeCodec, channels: int) -> LatentPreviewer:
        generator = torch.Generator(device="cpu").manual_seed(0)
        latents = torch.randn(4, channels, _FIT_SIDE, _FIT_SIDE, generator=generator)
        decoded = vae.decode(latents.to(vae.device))
        pixels = torch.stack([torch.frombuffer(bytearray(image.rgb), dtype=torch.uint8)
                              .view(image.height, image.width, 3) for image in decoded]).float() / 255
        scale = decoded[0].height // _FIT_SIDE
        patches = torch.nn.functional.avg_pool2d(pixels.permute(0, 3, 1, 2), scale).permute(0, 2, 3, 1)
        inputs = latents.permute(0, 2, 3, 1).reshape(-1, channels)
        inputs = torch.cat([inputs, torch.ones(inputs.shape[0], 1)], dim=1)
        solution = torch.linalg.lstsq(inputs, patches.reshape(-1, 3)).solution
        return cls(solution.to(vae.device))

    @torch.inference_mode()
    def preview(self, latent: torch.Tensor, sigma: float) -> RawImage:
        """``latent`` (``channels x h x w``, as a step leaves it) as an ``w x h`` RGB image."""
        scaled = latent.float() / math.sqrt(sigma * sigma + 1.0)
        weights = self.weights.to(scaled.device)
        rgb = torch.einsum("chw,cd->hwd", scaled, weights[:-1]) + weights[-1]
        pixels = rgb.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().contiguous()
        height, width, _ = pixels.shape
        return RawImage(width, height, pixels.numpy().tobytes())
