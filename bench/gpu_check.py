"""The self-hosted backend on a GPU, with nothing downloaded: full-size SDXL with random weights.

Writes SDXL base's UNet, VAE and both text encoders with random weights in the model-directory
layout (``backends.local.random_model``), loads them through the project's own loader and
pipeline, and prints, on CUDA:

    memory with every step count (1, 2, 4, 8) loaded
    UNet step time at 1024x1024 (batch 1)
    VAE decode at 1024x1024: the fp16-fix VAE in fp16 vs the base VAE in fp32
    end-to-end 4-step latency at 1024x1024, batch 1 (text encoders, UNet, VAE, pixels to host)
    throughput at batch 1, 2, 4, 8 (4 steps, 1024x1024) and PNG/JPEG encoding of one image
    compile on vs off: warm-up (compile) time, and the same 4-step latency compiled
    recompile behaviour: more distinct sizes than dynamo's recompile limit, all served (eagerly)

Random weights make the images noise, not the timings. ``--model-dir`` measures a real model
directory instead (``base/``, ``lightning/``, optionally ``vae-fp16-fix/``). Every phase checks
the time budget (``--budget-s``, 8.5 minutes by default) and says when it is skipped. Exit status
1 when a check fails (a request that errors, a compile while serving).

    python bench/gpu_check.py                 # on a CUDA machine (torch with CUDA, no downloads)
    python bench/gpu_check.py --smoke         # the same code paths on the CPU with tiny shapes
                                              # (one timed call per figure, batches 1 and 8)
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET_LATENCY_S = 0.35
TARGET_IMAGES_PER_S = 5.0
RECOMPILE_SIZES = [(1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344),
                   (1536, 640), (640, 1536), (1032, 1032), (264, 1032), (776, 1032)]
"""SDXL's usual sizes plus odd ones: more than dynamo's default recompile limit (8)."""
SMOKE_SIZES = [(256, 256), (264, 256), (256, 264), (328, 256), (256, 320), (512, 264)]
BATCHES = (1, 2, 4, 8)
SMOKE_BATCHES = (1, 8)
"""Batch 8 is two requests of four images each (``_requests``): one batch of several requests,
each of several images, the paths batches 2 and 4 take alone; on the CPU those two were a quarter
of the smoke run (``tests/backends/local/test_gpu_check.py``)."""


class Budget:
    """Seconds left for the whole check; a phase that would not fit is skipped with a line."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        return self.ends - time.monotonic()

    def allows(self, phase: str, needs_s: float) -> bool:
        if self.left() >= needs_s:
            return True
        print(f"SKIPPED {phase}: {self.left():.0f} s left of the budget, it needs about {needs_s:.0f} s")
        return False


class Check:
    """The figures and failures of one run."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.failures: list[str] = []

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"FAILED {what}")

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def median_s(self, call: Callable[[], object], repeats: int) -> float:
        call()  # untimed: first-call allocations, cuDNN autotuning
        self.sync()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            self.sync()
            times.append(time.perf_counter() - started)
        return statistics.median(times)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU (the test suite runs this)")
    parser.add_argument("--model-dir", type=Path, help="a real model directory instead of random weights")
    parser.add_argument("--budget-s", type=float, default=510.0, help="stop starting phases after this")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile-mode", default="reduce-overhead",
                        help="torch.compile mode for the compile phase (max-autotune takes far longer)")
    parser.add_argument("--skip-compile", action="store_true")
    return parser.parse_args(argv)


@contextmanager
def _phase(name: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"\n== {name}", flush=True)
    yield
    print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        print("no CUDA device (or a CPU-only torch build): run with --smoke for the CPU code paths")
        return 2
    if args.smoke:  # tiny shapes: a second thread costs more in waiting than it computes
        torch.set_num_threads(1)
    check = Check(cuda)
    budget = Budget(args.budget_s)
    print(f"torch {torch.__version__}; device: {torch.cuda.get_device_name(0) if cuda else 'CPU (smoke)'}")
    with tempfile.TemporaryDirectory(prefix="boltgate-gpu-check-") as scratch:
        model_dir = args.model_dir or _write_model(Path(scratch) / "model", cuda=cuda, smoke=args.smoke)
        _run_phases(args, check, budget, model_dir, Path(scratch))
    print(f"\n{'OK' if not check.failures else 'FAILED: ' + '; '.join(check.failures)} "
          f"({args.budget_s - budget.left():.0f} s)")
    return 1 if check.failures else 0


def _write_model(directory: Path, *, cuda: bool, smoke: bool) -> Path:
    from backends.local.random_model import SDXL, TINY, write_random_model

    shapes = TINY if smoke else SDXL
    with _phase(f"writing {shapes.name}"):
        write_random_model(directory, shapes, device="cuda" if cuda else "cpu", half=cuda, distinct_checkpoints=False)
        if cuda:
            gc.collect()
            import torch

            torch.cuda.empty_cache()
    return directory


def _config(model_dir: Path, side: int, **fields: object) -> Any:
    from backends.local.config import LocalBackendConfig

    return LocalBackendConfig.model_validate({"model_dir": model_dir, "preload_steps": (1, 2, 4, 8),
                                              "warmup_sizes": f"{side}x{side}", "max_batch_size": 8, **fields})


def _run_phases(args: argparse.Namespace, check: Check, budget: Budget, model_dir: Path, scratch: Path) -> None:
    import torch

    from backends.local.pipeline import LightningPipeline

    side = 256 if args.smoke else 1024  # the smallest side a request may ask for
    repeats = 1 if args.smoke else args.repeats  # the smoke run checks code paths, not figures
    with _phase("loading every step count through the loader (1, 2, 4, 8)"):
        started = time.perf_counter()
        pipeline = LightningPipeline.load(_config(model_dir, side, warmup=False))
        print(f"   load: {time.perf_counter() - started:.1f} s; steps loaded {pipeline.loaded_steps}; "
              f"VAE {pipeline.vae.dtype}, UNet {pipeline.dtype}")
        if check.cuda:
            print(f"   GPU memory with all step counts loaded: {torch.cuda.memory_allocated() / 2**30:.2f} GiB "
                  f"(reserved {torch.cuda.memory_reserved() / 2**30:.2f} GiB)")
    _unet_and_vae(check, pipeline, model_dir, side, repeats)
    _end_to_end(check, pipeline, side, repeats, SMOKE_BATCHES if args.smoke else BATCHES)
    del pipeline
    gc.collect()
    if check.cuda:
        torch.cuda.empty_cache()
    if not args.skip_compile and budget.allows("recompile behaviour", 30 if args.smoke else 150):
        _recompile_behaviour(check, model_dir, side, args.smoke)
        _release(check)
    if not args.skip_compile and budget.allows("compile on vs off", 30 if args.smoke else 240):
        _compile_on(check, model_dir, side, repeats, args, scratch)
        _release(check)


def _release(check: Check) -> None:
    """Forget compiled graphs and free the memory of the pipeline a phase built."""
    import torch

    torch._dynamo.reset()
    gc.collect()
    if check.cuda:
        torch.cuda.empty_cache()


def _unet_and_vae(check: Check, pipeline: Any, model_dir: Path, side: int, repeats: int) -> None:
    import torch

    from backends.local.config import LocalBackendConfig
    from backends.local.loader import WeightSource, load_vae
    from backends.local.vae import VaeCodec

    latent = side // 8
    device, dtype = pipeline.torch_device, pipeline.dtype
    parts = pipeline.components
    text_dim = parts.text_encoder.config.hidden_size + parts.text_encoder_2.config.hidden_size
    pooled = parts.text_encoder_2.config.projection_dim
    unet = pipeline.for_steps(4).text_to_image.unet
    inputs = {
        "sample": torch.randn(1, 4, latent, latent, device=device, dtype=dtype),
        "timestep": torch.tensor(999, device=device),
        "encoder_hidden_states": torch.randn(1, 77, text_dim, device=device, dtype=dtype),
        "added_cond_kwargs": {"text_embeds": torch.randn(1, pooled, device=device, dtype=dtype),
                              "time_ids": torch.tensor([[side, side, 0, 0, side, side]], device=device, dtype=dtype)},
    }
    with _phase(f"UNet step and VAE decode at {side}x{side}, batch 1"), torch.inference_mode():
        step = check.median_s(lambda: unet(**inputs), repeats)
        print(f"   UNet step: {step * 1000:.1f} ms")
        latents = torch.randn(1, 4, latent, latent, device=device, dtype=dtype)
        fast = check.median_s(lambda: pipeline.vae.decode(latents), repeats)
        kind = "fp16-fix" if pipeline.vae.dtype == torch.float16 else "base"
        print(f"   VAE decode + pixels to host, {kind} VAE in {pipeline.vae.dtype}: {fast * 1000:.1f} ms")
        source = WeightSource(LocalBackendConfig(model_dir=model_dir, fp16_fix_vae=False), dtype)
        base = VaeCodec(load_vae(source, device, dtype), device)
        slow = check.median_s(lambda: base.decode(latents), repeats)
        print(f"   VAE decode + pixels to host, base VAE in {base.dtype}: {slow * 1000:.1f} ms "
              f"({slow / fast:.2f}x the {pipeline.vae.dtype} one)")
        if base.vae.dtype != base.dtype or pipeline.vae.vae.dtype != pipeline.vae.dtype:
            check.fail("a VAE changed dtype while decoding")


def _requests(side: int, images: int, steps: int = 4) -> list[Any]:
    from core.request import ImageRequest

    requests, seed = [], 0
    while images > 0:
        n = min(4, images)
        requests.append(ImageRequest(prompt="a lighthouse on a cliff at dusk", width=side, height=side,
                                     steps=steps, seed=seed, n=n))
        images, seed = images - n, seed + 1
    return requests


def _end_to_end(check: Check, pipeline: Any, side: int, repeats: int, batches: tuple[int, ...]) -> None:
    from backends.local.encoding import encode_image

    with _phase(f"end to end at {side}x{side}, 4 steps (text encoders, UNet, VAE, pixels to host)"):
        single = _requests(side, 1)
        latency = check.median_s(lambda: pipeline.run(single), repeats)
        verdict = "" if not check.cuda else f" (target <= {TARGET_LATENCY_S} s: " + (
            "met)" if latency <= TARGET_LATENCY_S else "NOT met)")
        print(f"   batch 1 latency: {latency:.3f} s{verdict}")
        best = 0.0
        for batch in batches:
            requests = _requests(side, batch)
            seconds = check.median_s(partial(pipeline.run, requests), max(min(repeats, 2), repeats // 2))
            best = max(best, batch / seconds)
            print(f"   batch {batch}: {seconds:.3f} s per call, {batch / seconds:.2f} images/s")
        if check.cuda:
            print(f"   best throughput {best:.2f} images/s (target >= {TARGET_IMAGES_PER_S}: "
                  f"{'met' if best >= TARGET_IMAGES_PER_S else 'NOT met'})")
        [[image]] = pipeline.run(single)
        for fmt in ("png", "jpeg", "webp"):
            seconds = check.median_s(partial(encode_image, image, fmt), 3)
            print(f"   encoding one {side}px image as {fmt} (off the GPU thread): {seconds * 1000:.0f} ms")


def _recompile_behaviour(check: Check, model_dir: Path, side: int, smoke: bool) -> None:
    """Compiled for one size at warm-up; more sizes than the recompile limit all succeed, eagerly."""
    import torch
    from torch._dynamo.utils import counters

    from backends.local.pipeline import load_warm_pipeline

    sizes = SMOKE_SIZES if smoke else RECOMPILE_SIZES
    torch._dynamo.reset()
    if smoke:  # six tiny sizes are more than a limit of two, as twelve SDXL sizes are more than eight
        torch._dynamo.config.recompile_limit = 2
    limit = torch._dynamo.config.recompile_limit
    with _phase(f"recompile behaviour: {len(sizes)} sizes, recompile limit {limit} (backend eager)"):
        config = _config(model_dir, side, preload_steps=(4,), compile_unet=True, compile_vae=True,
                         compile_backend="eager", max_batch_size=1)
        pipeline = load_warm_pipeline(config)
        graphs = counters["stats"]["unique_graphs"]
        for width, height in sizes:
            try:
                started = time.perf_counter()
                [[image]] = pipeline.run([_one(width, height)])
                check.sync()
                print(f"   {width}x{height}: ok in {time.perf_counter() - started:.2f} s")
                if image.size != (width, height):
                    check.fail(f"{width}x{height} answered {image.size}")
            except Exception as exc:  # the point of the check: report, never stop at the first
                check.fail(f"{width}x{height}: {type(exc).__name__}: {str(exc)[:200]}")
        if counters["stats"]["unique_graphs"] != graphs:
            check.fail("something compiled while serving")
        print(f"   eager fallbacks: {pipeline.eager_fallbacks()}")


def _one(width: int, height: int) -> Any:
    from core.request import ImageRequest

    return ImageRequest(prompt="a lighthouse", width=width, height=height, steps=4, seed=1)


def _compile_on(check: Check, model_dir: Path, side: int, repeats: int, args: argparse.Namespace,
                scratch: Path) -> None:

    from backends.local.pipeline import load_warm_pipeline

    backend = "eager" if args.smoke else "inductor"
    with _phase(f"compile on: backend {backend}, mode {args.compile_mode}, warmed {side}x{side} batch 1"):
        config = _config(model_dir, side, preload_steps=(4,), compile_unet=True, compile_vae=True,
                         compile_backend=backend, compile_mode=args.compile_mode, max_batch_size=1,
                         compile_cache_dir=scratch / "compile-cache")
        started = time.perf_counter()
        pipeline = load_warm_pipeline(config)
        print(f"   load + warm-up (compiling): {time.perf_counter() - started:.1f} s")
        single = _requests(side, 1)
        latency = check.median_s(lambda: pipeline.run(single), repeats)
        print(f"   batch 1 latency compiled: {latency:.3f} s (eager fallbacks: {pipeline.eager_fallbacks()})")
        if pipeline.eager_fallbacks():
            check.fail("the warmed size ran eagerly")


if __name__ == "__main__":
    sys.exit(main())
