"""Speed levers: the attention kernel everywhere, the CUDA-only levers skipped on the CPU with a log line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from backends.local.checkpoints import checkpoint_for
from backends.local.compiled import ShapeCompiled
from backends.local.config import LocalBackendConfig
from backends.local.loader import WeightSource, load_base_components, load_lightning_unet
from backends.local.speed import log_skipped_levers, prepare_unet

CPU = torch.device("cpu")


def _unet(model_dir: Path) -> Any:
    source = WeightSource(LocalBackendConfig(model_dir=model_dir), torch.float32)
    config = load_base_components(source, CPU, torch.float32).unet_config
    return load_lightning_unet(source.checkpoint_path(checkpoint_for(4)), config, CPU, torch.float32)


@pytest.mark.parametrize(("sdpa", "processor"), [(True, "AttnProcessor2_0"), (False, "AttnProcessor")])
def test_the_attention_kernel_follows_the_setting(tiny_model_dir: Path, sdpa: bool, processor: str) -> None:
    config = LocalBackendConfig(sdpa=sdpa, fuse_qkv=True)
    unet = prepare_unet(_unet(tiny_model_dir), config, CPU)
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {processor}  # QKV not fused on CPU
    assert type(unet).__name__ == "UNet2DConditionModel"


def test_a_compiled_unet_is_wrapped_so_unwarmed_shapes_run_eagerly(tiny_model_dir: Path) -> None:
    unet = prepare_unet(_unet(tiny_model_dir), LocalBackendConfig(compile_unet=True, compile_backend="eager"), CPU)
    assert isinstance(unet, ShapeCompiled)
    assert unet.config.addition_embed_type == "text_time"  # diffusers reads the UNet's config through it


def test_cuda_only_levers_are_named_in_the_log_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    config = LocalBackendConfig(channels_last=True, compile_unet=True, compile_vae=False, fuse_qkv=True)
    with caplog.at_level(logging.INFO, logger="backends.local.speed"):
        log_skipped_levers(config, CPU)
    assert "channels_last, fuse_qkv need CUDA; skipped on cpu" in caplog.text
    assert "torch.compile (backend inductor) on cpu" in caplog.text


def test_nothing_is_logged_when_no_cuda_lever_is_on(caplog: pytest.LogCaptureFixture) -> None:
    config = LocalBackendConfig(channels_last=False)
    with caplog.at_level(logging.INFO, logger="backends.local.speed"):
        log_skipped_levers(config, CPU)
    assert caplog.text == ""
