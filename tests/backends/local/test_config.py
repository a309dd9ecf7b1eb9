"""The local backend's settings: defaults for one machine, route options as strings, no torch import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from backends.local.config import LocalBackendConfig


def test_defaults_serve_one_machine() -> None:
    config = LocalBackendConfig()
    assert config.model_dir is None
    assert config.base_model_id == "stabilityai/stable-diffusion-xl-base-1.0"
    assert config.lightning_repo == "ByteDance/SDXL-Lightning"
    assert (config.device, config.dtype, config.sdpa, config.warmup) == ("auto", "auto", True, True)
    assert (config.max_batch_size, config.batch_window_ms, config.max_queue) == (4, 10.0, 64)
    assert config.preload_steps == (1, 2, 4, 8)  # every advertised step count, loaded at start
    assert config.fp16_fix_vae == "auto"


def test_route_options_arrive_as_strings() -> None:
    config = LocalBackendConfig.from_options(
        {"model_dir": "/models/sdxl", "preload_steps": "1, 4,8", "fuse_qkv": "true", "max_batch_size": "8"}
    )
    assert config.model_dir == Path("/models/sdxl")
    assert config.preload_steps == (1, 4, 8)
    assert config.fuse_qkv is True
    assert config.max_batch_size == 8


def test_refuses_step_counts_without_a_checkpoint() -> None:
    with pytest.raises(ValidationError, match="no Lightning checkpoint"):
        LocalBackendConfig(preload_steps=(3,))


def test_refuses_unknown_settings() -> None:
    with pytest.raises(ValidationError):
        LocalBackendConfig.from_options({"compile_everything": "yes"})


def test_importing_the_package_and_config_leaves_torch_unloaded() -> None:
    modules = "backends.local, backends.local.config, backends.local.engine, backends.local.inprocess"
    heavy = "('torch', 'diffusers', 'transformers')"
    code = f"import sys, {modules}, backends.local.worker_app; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_warm_up_sizes_arrive_as_width_x_height() -> None:
    config = LocalBackendConfig.from_options({"warmup_sizes": "1024x1024, 1152x896,1024x1024"})
    assert config.warmup_sizes == ((1024, 1024), (1152, 896))
    assert LocalBackendConfig().warmup_sizes == ((1024, 1024),)
    for bad in ("1024", "100x100", "1024x1030", ""):
        with pytest.raises(ValidationError, match="warmup_sizes"):
            LocalBackendConfig.from_options({"warmup_sizes": bad})


def test_liveness_gives_up_no_earlier_than_readiness() -> None:
    config = LocalBackendConfig()
    assert (config.unready_after_failures, config.restart_after_failures) == (3, 10)
    with pytest.raises(ValidationError, match="restart_after_failures"):
        LocalBackendConfig(unready_after_failures=5, restart_after_failures=2)
