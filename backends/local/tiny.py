"""A tiny SDXL-shaped model, written to disk in the real layout, for offline tests and benchmarks.

Same architecture family as SDXL (two CLIP text encoders whose hidden states concatenate into the
UNet's cross-attention, ``text_time`` added conditioning, a 4-channel latent VAE with a scale
factor of 8), with a few thousand times fewer parameters and random weights: the images are
noise, but every code path of the real loader and pipeline runs, on a CPU, in well under a second.
The tokenizer is written from a local byte-level vocabulary, so nothing touches the hub. The
shapes and the writer are ``random_model``'s, which also writes the full-size model of
``bench/gpu_check.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from backends.local.random_model import TINY, write_random_model, write_tokenizer_files

__all__ = ["main_make_tiny", "make_tiny_model", "write_tokenizer_files"]


def make_tiny_model(directory: Path) -> Path:
    """Write ``directory/base``, ``directory/lightning/*.safetensors`` (each step count's weights
    nudged differently, so the files differ) and ``directory/vae-fp16-fix``; returns ``directory``."""
    return write_random_model(Path(directory), TINY, distinct_checkpoints=True)


def main_make_tiny(directory: str) -> int:
    """``boltgate local make-tiny DIR``: write the tiny model and say how to use it."""
    target = make_tiny_model(Path(directory))
    print(f"tiny SDXL-Lightning model written to {target}; serve it with model_dir={target}")
    return 0


if __name__ == "__main__":
    sys.exit(main_make_tiny(sys.argv[1]))
