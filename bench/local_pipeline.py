"""The local SDXL-Lightning pipeline's speed: latency per image and images/s by batch size and steps.

Uses the real model when ``BOLTGATE_LOCAL_MODEL_DIR`` points to one (``base/`` and ``lightning/``),
else builds the tiny random-weight model in a temporary directory and says so: those figures
measure the code path (tokenising, scheduling, VAE, PIL), not SDXL. Each cell is the median of
``--repeats`` timed pipeline calls after one untimed call at that shape (the machine drifts, so
one call says little). On CUDA it also reports the 1024x1024 4-step latency at batch 1 and the
best throughput seen.

    python bench/local_pipeline.py [--side 1024] [--repeats 3] [--set compile_unet=true ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from backends.local.config import LocalBackendConfig
from core.request import ImageRequest

STEPS = (1, 2, 4, 8)
BATCHES = (1, 2, 4)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, help="image side (default 1024 on CUDA, 256 otherwise)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a LocalBackendConfig field (speed levers: compile_unet=true, fuse_qkv=true...)")
    return parser.parse_args(argv)


def _model_dir(scratch: Path) -> tuple[Path, str]:
    configured = os.environ.get("BOLTGATE_LOCAL_MODEL_DIR")
    if configured:
        return Path(configured), f"real model from BOLTGATE_LOCAL_MODEL_DIR={configured}"
    from backends.local.tiny import make_tiny_model

    return make_tiny_model(scratch), ("tiny random-weight SDXL-shaped model (BOLTGATE_LOCAL_MODEL_DIR unset): "
                                      "figures measure the code path, not SDXL")


def _time_call(run: Callable[[Sequence[ImageRequest]], object], requests: Sequence[ImageRequest]) -> float:
    started = time.perf_counter()
    run(requests)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    from backends.local.pipeline import load_warm_pipeline

    cuda = torch.cuda.is_available()
    side = args.side or (1024 if cuda else 256)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir, described = _model_dir(Path(scratch))
        overrides = dict(item.partition("=")[::2] for item in args.set)
        config = LocalBackendConfig.model_validate({
            "model_dir": model_dir, "preload_steps": STEPS, "warmup_sizes": f"{side}x{side}",
            "max_batch_size": max(BATCHES), **overrides,
        })
        loading = time.perf_counter()
        pipeline = load_warm_pipeline(config)
        load_s = time.perf_counter() - loading
        device = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} torch threads)"
        print(f"device: {device}; dtype {pipeline.dtype}; torch {torch.__version__}")
        print(f"model: {described}")
        print(f"load + warm-up: {load_s:.1f} s; {side}x{side}; median of {args.repeats} calls per cell\n")
        print(f"{'steps':>5} {'batch':>5} {'call s':>8} {'s/image':>8} {'images/s':>9}")
        results: dict[tuple[int, int], float] = {}
        for steps in STEPS:
            for batch in BATCHES:
                requests = [ImageRequest(prompt="a lighthouse on a cliff at dusk, oil painting", width=side,
                                         height=side, steps=steps, seed=seed) for seed in range(batch)]
                _time_call(pipeline.run, requests)
                call_s = statistics.median(_time_call(pipeline.run, requests) for _ in range(args.repeats))
                results[steps, batch] = call_s
                print(f"{steps:>5} {batch:>5} {call_s:>8.3f} {call_s / batch:>8.3f} {batch / call_s:>9.2f}")
        best = max(results, key=lambda key: key[1] / results[key])
        print(f"\nbest throughput: {best[1] / results[best]:.2f} images/s ({best[0]} steps, batch {best[1]})")
        if cuda:
            print(f"{side}x{side} 4-step latency at batch 1: {results[4, 1] * 1000:.0f} ms "
                  f"(peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
