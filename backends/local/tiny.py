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

import json
import sys
from pathlib import Path


def _byte_alphabet() -> list[str]:
    """GPT-2/CLIP's printable stand-in for each of the 256 bytes (what byte-level BPE splits into)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]


def write_tokenizer_files(directory: Path) -> Path:
    """``vocab.json`` (each byte, alone and word-final, plus CLIP's two specials) and empty merges."""
    directory.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_alphabet()
    tokens = [*alphabet, *(char + "</w>" for char in alphabet), "<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}), "utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n", "utf-8")
    return directory


def make_tiny_model(directory: Path) -> Path:
    """Write ``directory/base``, ``directory/lightning/*.safetensors`` (each step count's weights
    nudged differently, so the files differ) and ``directory/vae-fp16-fix``; returns ``directory``."""
    from backends.local.random_model import TINY, write_random_model

    return write_random_model(Path(directory), TINY, distinct_checkpoints=True)


def main_make_tiny(directory: str) -> int:
    """``boltgate local make-tiny DIR``: write the tiny model and say how to use it."""
    target = make_tiny_model(Path(directory))
    print(f"tiny SDXL-Lightning model written to {target}; serve it with model_dir={target}")
    return 0


if __name__ == "__main__":
    sys.exit(main_make_tiny(sys.argv[1]))
