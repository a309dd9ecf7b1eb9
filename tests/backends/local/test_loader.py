"""The loader: device and dtype choices, the UNet built from the base config holding the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backends.local.checkpoints import checkpoint_for
from backends.local.config import LocalBackendConfig
from backends.local.loader import (
    WeightSource,
    lightning_scheduler,
    load_base_components,
    load_lightning_unet,
    load_vae,
    resolve_device,
    resolve_dtype,
)


def test_cpu_runs_in_float32_even_when_half_precision_is_asked() -> None:
    cpu = torch.device("cpu")
    assert resolve_dtype(LocalBackendConfig(), cpu) == torch.float32
    assert resolve_dtype(LocalBackendConfig(dtype="float16"), cpu) == torch.float32
    assert resolve_dtype(LocalBackendConfig(dtype="bfloat16"), cpu) == torch.bfloat16


def test_auto_device_is_cuda_only_when_there_is_one() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(LocalBackendConfig()).type == expected
    assert resolve_device(LocalBackendConfig(device="cpu")).type == "cpu"


def test_a_local_directory_never_asks_the_hub_for_a_variant(tiny_model_dir: Path) -> None:
    source = WeightSource(LocalBackendConfig(model_dir=tiny_model_dir), torch.float16)
    assert source.base == str(tiny_model_dir / "base")
    assert source.pretrained_kwargs("vae") == {"subfolder": "vae", "local_files_only": True}
    hub = WeightSource(LocalBackendConfig(), torch.float16)
    assert hub.base == "stabilityai/stable-diffusion-xl-base-1.0"
    assert hub.pretrained_kwargs("vae") == {"subfolder": "vae", "variant": "fp16"}


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    source = WeightSource(LocalBackendConfig(model_dir=tmp_path), torch.float32)
    with pytest.raises(FileNotFoundError, match=r"sdxl_lightning_8step_unet\.safetensors"):
        source.checkpoint_path(checkpoint_for(8))


def test_the_unet_holds_exactly_the_checkpoint_s_weights(tiny_model_dir: Path) -> None:
    source = WeightSource(LocalBackendConfig(model_dir=tiny_model_dir), torch.float32)
    components = load_base_components(source, torch.device("cpu"), torch.float32)
    path = source.checkpoint_path(checkpoint_for(2))
    unet = load_lightning_unet(path, components.unet_config, torch.device("cpu"), torch.float32)
    expected = load_file(str(path))
    loaded = unet.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[name], expected[name]) for name in expected)
    assert not unet.training


def test_schedulers_are_trailing_euler_with_x0_for_one_step(tiny_model_dir: Path) -> None:
    source = WeightSource(LocalBackendConfig(model_dir=tiny_model_dir), torch.float32)
    components = load_base_components(source, torch.device("cpu"), torch.float32)
    one = lightning_scheduler(components.scheduler_config, checkpoint_for(1))
    four = lightning_scheduler(components.scheduler_config, checkpoint_for(4))
    assert type(one).__name__ == type(four).__name__ == "EulerDiscreteScheduler"
    assert one.config.timestep_spacing == four.config.timestep_spacing == "trailing"
    assert (one.config.prediction_type, four.config.prediction_type) == ("sample", "epsilon")
    four.set_timesteps(4)
    assert four.timesteps.tolist() == [999, 749, 499, 249]


def test_the_fp16_fix_vae_serves_float16_by_default_and_never_float32(tiny_model_dir: Path) -> None:
    cpu = torch.device("cpu")
    half = load_vae(WeightSource(LocalBackendConfig(model_dir=tiny_model_dir), torch.float16), cpu, torch.float16)
    assert (half.dtype, half.config.force_upcast) == (torch.float16, False)
    full = load_vae(WeightSource(LocalBackendConfig(model_dir=tiny_model_dir), torch.float32), cpu, torch.float32)
    assert (full.dtype, full.config.force_upcast) == (torch.float32, True)


def test_without_the_fp16_fix_vae_the_base_vae_stays_in_float32(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "base").symlink_to(tiny_model_dir / "base")
    source = WeightSource(LocalBackendConfig(model_dir=tmp_path), torch.float16)
    vae = load_vae(source, torch.device("cpu"), torch.float16)
    assert (vae.dtype, vae.config.force_upcast) == (torch.float32, True)
    assert "could not be loaded" in caplog.text
    with pytest.raises(OSError):
        load_vae(WeightSource(LocalBackendConfig(model_dir=tmp_path, fp16_fix_vae=True), torch.float16),
                 torch.device("cpu"), torch.float16)
