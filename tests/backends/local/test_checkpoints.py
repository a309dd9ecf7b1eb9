"""Which Lightning checkpoint serves which step count, and where it lies in a model directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.local.checkpoints import SUPPORTED_STEPS, base_dir, checkpoint_for, lightning_path


def test_one_checkpoint_per_supported_step_count() -> None:
    assert sorted(SUPPORTED_STEPS) == [1, 2, 4, 8]
    assert [checkpoint_for(steps).filename for steps in (2, 4, 8)] == [
        "sdxl_lightning_2step_unet.safetensors",
        "sdxl_lightning_4step_unet.safetensors",
        "sdxl_lightning_8step_unet.safetensors",
    ]


def test_the_one_step_checkpoint_predicts_the_sample() -> None:
    one = checkpoint_for(1)
    assert one.filename == "sdxl_lightning_1step_unet_x0.safetensors"
    assert one.prediction_type == "sample"
    assert {checkpoint_for(steps).prediction_type for steps in (2, 4, 8)} == {"epsilon"}


def test_other_step_counts_have_no_checkpoint() -> None:
    with pytest.raises(ValueError, match="no Lightning checkpoint for 3 steps"):
        checkpoint_for(3)


def test_model_directory_layout() -> None:
    root = Path("/models/sdxl")
    assert base_dir(root) == root / "base"
    assert lightning_path(root, checkpoint_for(4)) == root / "lightning" / "sdxl_lightning_4step_unet.safetensors"
