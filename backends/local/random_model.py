"""An SDXL-Lightning model directory with random weights, at full SDXL size or tiny, for checks
that must not download anything (``bench/gpu_check.py``; the tiny one also backs the tests).

The architecture is exactly SDXL base's (shapes from its published ``unet``, ``vae`` and text
encoder configs); the weights are random, so the images are noise and every timing is real.
The modules are built on the target device (initialising 2.6 billion parameters there takes
seconds, on a CPU minutes) and written in the layout of ``checkpoints``: ``base/`` holds the
text encoders, tokenizers, VAE, scheduler and the UNet's config (the loader never reads base
UNet weights), ``lightning/`` one UNet checkpoint per step count, ``vae-fp16-fix/`` the VAE
marked as not needing an fp32 upcast. With ``distinct_checkpoints=False`` the four checkpoint
files are links to one (5 GB written instead of 20 GB); the loader still loads four UNets.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.local.checkpoints import BASE_SUBDIR, CHECKPOINTS, FP16_FIX_VAE_SUBDIR, LIGHTNING_SUBDIR

SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "steps_offset": 1, "timestep_spacing": "leading", "prediction_type": "epsilon",
}
"""SDXL base's Euler scheduler (the loader switches it to trailing timesteps per checkpoint)."""


@dataclass(frozen=True)
class ModelShapes:
    """The constructor arguments of each part (text configs without the tokenizer's token ids)."""

    name: str
    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]
    text_encoder_2: dict[str, Any]
    vocab_size: int | None = None
    """Text embedding rows (SDXL's 49408); None: the byte-level tokenizer's own size."""
    scheduler: dict[str, Any] = field(default_factory=lambda: dict(SCHEDULER))


SDXL = ModelShapes(
    name="SDXL base 1.0 (full size, random weights)",
    unet={
        "sample_size": 128, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
        "block_out_channels": (320, 640, 1280),
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": (5, 10, 20), "transformer_layers_per_block": (1, 2, 10),
        "cross_attention_dim": 2048, "use_linear_projection": True, "norm_num_groups": 32,
        "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,
    },
    vae={
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": (128, 256, 512, 512),
        "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
        "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 0.13025,
        "force_upcast": True,
    },
    text_encoder={  # CLIP ViT-L/14's text tower
        "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
        "projection_dim": 768, "hidden_act": "quick_gelu", "max_position_embeddings": 77,
    },
    text_encoder_2={  # OpenCLIP ViT-bigG/14's text tower
        "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
        "projection_dim": 1280, "hidden_act": "gelu", "max_position_embeddings": 77,
    },
    vocab_size=49408,
)

TINY_TEXT_HIDDEN = 32
TINY_TIME_EMBED = 8
_TINY_TEXT = {
    "hidden_size": TINY_TEXT_HIDDEN, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
    "projection_dim": TINY_TEXT_HIDDEN, "hidden_act": "gelu", "max_position_embeddings": 77, "layer_norm_eps": 1e-5,
}
TINY = ModelShapes(
    name="tiny SDXL-shaped (random weights)",
    unet={
        "sample_size": 32, "in_channels": 4, "out_channels": 4, "layers_per_block": 1, "block_out_channels": (32, 64),
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": (2, 4), "use_linear_projection": True, "norm_num_groups": 32,
        "cross_attention_dim": 2 * TINY_TEXT_HIDDEN, "transformer_layers_per_block": (1, 1),
        "addition_embed_type": "text_time", "addition_time_embed_dim": TINY_TIME_EMBED,
        "projection_class_embeddings_input_dim": 6 * TINY_TIME_EMBED + TINY_TEXT_HIDDEN,
    },
    vae={
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": (8, 16, 16, 16),
        "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
        "layers_per_block": 1, "norm_num_groups": 8, "sample_size": 256, "scaling_factor": 0.13025,
    },
    text_encoder=_TINY_TEXT,
    text_encoder_2=_TINY_TEXT,
)


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


def byte_tokenizer() -> Any:
    """A CLIP tokenizer over the local byte-level vocabulary (nothing from the hub)."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as scratch:
        return CLIPTokenizer.from_pretrained(write_tokenizer_files(Path(scratch)), model_max_length=77)


def build_parts(shapes: ModelShapes, device: str = "cpu") -> dict[str, Any]:
    """The tokenizer, text encoders, UNet and VAE of ``shapes``, randomly initialised on ``device``."""
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    parts: Any = diffusers  # partly annotated: used untyped
    tokenizer = byte_tokenizer()
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id, "vocab_size": shapes.vocab_size or len(tokenizer)}
    with torch.device(device):
        modules = {
            "text_encoder": CLIPTextModel(CLIPTextConfig(**shapes.text_encoder, **ids)),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**shapes.text_encoder_2, **ids)),
            "unet": parts.UNet2DConditionModel(**shapes.unet),
            "vae": parts.AutoencoderKL(**shapes.vae),
        }
    return {**modules, "tokenizer": tokenizer, "scheduler": parts.EulerDiscreteScheduler(**shapes.scheduler)}


def write_random_model(directory: Path, shapes: ModelShapes, *, device: str = "cpu", half: bool = False,
                       distinct_checkpoints: bool = True, seed: int = 0) -> Path:
    """Write a model directory of ``shapes`` with random weights (``half``: stored in float16)."""
    import torch

    directory = Path(directory)
    base = directory / BASE_SUBDIR
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = build_parts(shapes, device)
    if half:
        for name in ("text_encoder", "text_encoder_2", "unet", "vae"):
            parts[name] = parts[name].half()
    for name in ("text_encoder", "text_encoder_2", "vae"):
        parts[name].save_pretrained(base / name)
    for name in ("tokenizer", "tokenizer_2"):
        parts["tokenizer"].save_pretrained(base / name)
    parts["scheduler"].save_pretrained(base / "scheduler")
    parts["unet"].save_config(base / "unet")
    (base / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}), "utf-8")
    _write_checkpoints(parts["unet"].state_dict(), directory / LIGHTNING_SUBDIR, distinct=distinct_checkpoints)
    parts["vae"].register_to_config(force_upcast=False)  # what marks the fp16-fix VAE
    parts["vae"].save_pretrained(directory / FP16_FIX_VAE_SUBDIR)
    return directory


def _write_checkpoints(state: dict[str, Any], directory: Path, *, distinct: bool) -> None:
    """One file per step count; ``distinct``: each nudged differently, else links to the first."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    first: Path | None = None
    for steps, checkpoint in CHECKPOINTS.items():
        path = directory / checkpoint.filename
        if first is not None and not distinct:
            path.unlink(missing_ok=True)
            path.symlink_to(first.name)
            continue
        noise = torch.Generator().manual_seed(steps)
        weights = {name: tensor.detach().to("cpu") for name, tensor in state.items()}
        if distinct:
            weights = {name: tensor + 0.01 * torch.randn(tensor.shape, generator=noise).to(tensor.dtype)
                       for name, tensor in weights.items()}
        save_file({name: tensor.contiguous() for name, tensor in weights.items()}, str(path),
                  metadata={"format": "pt"})
        first = first or path
