"""Which Lightning UNet checkpoint serves which step count, and where the weights lie on disk.

SDXL-Lightning ships one UNet per step count. The 1-step checkpoint predicts the clean image
(x0) rather than the noise, so its scheduler needs ``prediction_type="sample"``. A model
directory (written by ``make_tiny_model`` or by hand from the hub files) looks like::

    DIR/base/                                           diffusers save_pretrained of SDXL base
    DIR/lightning/sdxl_lightning_{2,4,8}step_unet.safetensors
    DIR/lightning/sdxl_lightning_1step_unet_x0.safetensors
    DIR/vae-fp16-fix/                                   optional, used when fp16_fix_vae is on
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PredictionType = Literal["epsilon", "sample"]

SUPPORTED_STEPS: frozenset[int] = frozenset({1, 2, 4, 8})
BASE_SUBDIR = "base"
LIGHTNING_SUBDIR = "lightning"
FP16_FIX_VAE_SUBDIR = "vae-fp16-fix"


@dataclass(frozen=True, slots=True)
class LightningCheckpoint:
    """One distilled UNet: the step count it was trained for and how its output is read."""

    steps: int
    filename: str
    prediction_type: PredictionType


CHECKPOINTS: dict[int, LightningCheckpoint] = {
    1: LightningCheckpoint(1, "sdxl_lightning_1step_unet_x0.safetensors", "sample"),
    2: LightningCheckpoint(2, "sdxl_lightning_2step_unet.safetensors", "epsilon"),
    4: LightningCheckpoint(4, "sdxl_lightning_4step_unet.safetensors", "epsilon"),
    8: LightningCheckpoint(8, "sdxl_lightning_8step_unet.safetensors", "epsilon"),
}


def checkpoint_for(steps: int) -> LightningCheckpoint:
    """The checkpoint distilled for ``steps``; a ValueError for any other count."""
    try:
        return CHECKPOINTS[steps]
    except KeyError:
        raise ValueError(f"no Lightning checkpoint for {steps} steps; use {sorted(SUPPORTED_STEPS)}") from None


def base_dir(model_dir: Path) -> Path:
    return model_dir / BASE_SUBDIR


def lightning_path(model_dir: Path, checkpoint: LightningCheckpoint) -> Path:
    return model_dir / LIGHTNING_SUBDIR / checkpoint.filename
