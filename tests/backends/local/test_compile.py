"""torch.compile degrades, never fails: shapes beyond what was compiled at start run eagerly.

On the CPU with the ``eager`` compile backend: dynamo traces, guards and counts recompiles
exactly as on a GPU, only no kernels are generated. The recompile limit is lowered so that a
handful of sizes is "more than the compile cache holds" (on a GPU the default of 8 is reached
the same way, one size at a time: before ``ShapeCompiled`` the third size here raised
``FailOnRecompileLimitHit``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch._dynamo.utils import counters

from backends.local.compiled import EagerFallbacks, ShapeCompiled
from backends.local.config import LocalBackendConfig
from backends.local.pipeline import load_warm_pipeline
from core.request import ImageRequest

MakeRequest = Callable[..., ImageRequest]
SIZES = [(256, 256), (264, 256), (256, 264), (328, 256), (256, 320), (512, 264)]
"""Latents of 32x32, 33x32, 32x33, 41x32, 32x40 and 64x33: each one a guard a compiled graph fails."""


@pytest.fixture
def small_compile_cache() -> Iterator[None]:
    """A fresh dynamo with room for two compiled shapes per function."""
    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=2):
        yield
    torch._dynamo.reset()


def _compiled_config(config: LocalBackendConfig, backend: str = "eager") -> LocalBackendConfig:
    return config.model_copy(update={
        "preload_steps": (1,), "compile_unet": True, "compile_vae": True, "compile_backend": backend,
        "max_batch_size": 1,
    })


@pytest.mark.usefixtures("small_compile_cache")
def test_more_sizes_than_the_compile_cache_holds_all_succeed_and_none_compiles(
    tiny_config: LocalBackendConfig, make_request: MakeRequest
) -> None:
    pipeline = load_warm_pipeline(_compiled_config(tiny_config))
    graphs_after_warmup = counters["stats"]["unique_graphs"]
    assert graphs_after_warmup >= 2  # the UNet and the VAE decoder compiled at 256x256
    for width, height in SIZES:
        [images] = pipeline.run([make_request(width=width, height=height, steps=1)])
        assert [image.size for image in images] == [(width, height)]
    assert counters["stats"]["unique_graphs"] == graphs_after_warmup  # nothing compiled while serving
    unwarmed = len(SIZES) - 1
    assert pipeline.eager_fallbacks() == {("unet", "shape_not_warmed"): unwarmed,
                                          ("vae_decoder", "shape_not_warmed"): unwarmed}


def _broken_backend(graph: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Any:
    raise RuntimeError("no C compiler for Triton")


@pytest.mark.usefixtures("small_compile_cache")
def test_a_compiler_that_fails_at_warm_up_leaves_the_pipeline_eager(
    tiny_config: LocalBackendConfig, make_request: MakeRequest
) -> None:
    torch._dynamo.register_backend(_broken_backend, name="boltgate_test_broken")
    pipeline = load_warm_pipeline(_compiled_config(tiny_config, backend="boltgate_test_broken"))
    [images] = pipeline.run([make_request(steps=1)])
    assert len(images) == 1
    fallbacks = pipeline.eager_fallbacks()
    assert fallbacks[("unet", "compile_failed")] == 3  # two warm-up calls (compile, record), then the request
    assert fallbacks[("vae_decoder", "compile_failed")] == 3


class _Twin:
    """A stand-in compiled module: runs the eager one until told to refuse like a failed guard."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.refuse = False
        self.calls = 0

    def __call__(self, sample: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.refuse:
            raise RuntimeError("Detected recompile when torch.compile stance is 'fail_on_recompile'")
        return self.module(sample)  # type: ignore[no-any-return]


def test_only_warmed_shapes_run_compiled_and_a_refusing_shape_turns_eager() -> None:
    twins: list[_Twin] = []

    def compile_module(module: Any) -> _Twin:
        twins.append(_Twin(module))
        return twins[-1]

    fallbacks = EagerFallbacks()
    linear = torch.nn.Linear(4, 4)
    wrapped = ShapeCompiled(linear, name="unet", compile_module=compile_module, fallbacks=fallbacks)
    [twin] = twins
    assert wrapped.in_features == 4  # attributes come from the eager module
    wrapped.set_warming(True)
    wrapped(torch.zeros(2, 4))
    wrapped.set_warming(False)
    wrapped(torch.zeros(2, 4))
    wrapped(torch.zeros(3, 4))
    assert (twin.calls, fallbacks.snapshot()) == (2, {("unet", "shape_not_warmed"): 1})
    twin.refuse = True
    out = wrapped(torch.zeros(2, 4))
    assert torch.equal(out, linear(torch.zeros(2, 4)))
    wrapped(torch.zeros(2, 4))
    assert twin.calls == 3  # refused once, then that shape no longer tries the compiled twin
    assert fallbacks.snapshot()[("unet", "recompile_refused")] == 1
    assert "compiled" not in dict(wrapped.named_children())  # the twin is not a second copy of the weights
