"""Fixtures of the local backend's tests: the tiny model built once, and a pipeline that waits on a gate.

The tiny model goes through the real writer and the real loader with the hub switched off, so
every test exercises the code a GPU machine runs, at 256x256 and a fraction of a second a call.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from backends.local.config import LocalBackendConfig
from backends.local.pipeline import LightningPipeline, load_warm_pipeline
from backends.local.tiny import make_tiny_model
from core.request import ImageRequest
from tests.backends.local.gated_pipeline import GatedPipeline
from tests.torch_threads import TORCH_THREADS

torch.set_num_threads(TORCH_THREADS)

SIDE = 256
"""The smallest side an ImageRequest accepts; the tiny model's native size."""

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``local`` (they need torch and diffusers): ``-m "not local"`` skips them."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.local)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-sdxl-lightning"))


@pytest.fixture(scope="session")
def tiny_config(tiny_model_dir: Path) -> LocalBackendConfig:
    return LocalBackendConfig(model_dir=tiny_model_dir, preload_steps=(1, 2, 4, 8), warmup_sizes=((SIDE, SIDE),))


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_config: LocalBackendConfig) -> LightningPipeline:
    return load_warm_pipeline(tiny_config)


@pytest.fixture
def make_request() -> Callable[..., ImageRequest]:
    def make(**fields: object) -> ImageRequest:
        values: dict[str, object] = {"prompt": "a lighthouse at dusk", "width": SIDE, "height": SIDE,
                                     "steps": 1, "seed": 7}
        values.update(fields)
        return ImageRequest.model_validate(values)

    return make


@pytest.fixture
def gated_pipeline() -> Iterator[GatedPipeline]:
    pipeline = GatedPipeline()
    yield pipeline
    pipeline.gate.set()
