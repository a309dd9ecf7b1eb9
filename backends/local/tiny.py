"""A tiny SDXL-shaped model, written to disk in the real layout, for offline tests and benchmarks.

Same architecture family as SDXL (two CLIP text encoders whose hidden states concatenate into the
UNet's cross-attention, ``text_time`` added conditioning, a 4-channel latent VAE with a scale
factor of 8), with a few thousand times fewer parameters and random weights: the images are
noise, but every code path of the real loader and pipeline runs, on a CPU, in well under a second.
The tokenizer is written from a local byte-level vocabulary, so nothing touches the hub.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from backends.local.checkpoints import CHECKPOINTS, FP16_FIX_VAE_SUBDIR, LIGHTNING_SUBDIR, base_dir

TEXT_HIDDEN = 32
TIME_EMBED = 8


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
    """Write ``directory/base``, ``directory/lightning/*.safetensors`` and ``directory/vae-fp16-fix``."""
    import torch

    directory = Path(directory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        pipeline = _tiny_pipeline()
        pipeline.save_pretrained(base_dir(directory))
        _write_lightning_checkpoints(pipeline.unet, directory / LIGHTNING_SUBDIR)
        pipeline.vae.register_to_config(force_upcast=False)  # what marks the fp16-fix VAE
        pipeline.vae.save_pretrained(directory / FP16_FIX_VAE_SUBDIR)
    return directory


def _tiny_pipeline() -> Any:
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    parts: Any = diffusers  # partly annotated: used untyped
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer_files(Path(scratch)), model_max_length=77)
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=37, projection_dim=TEXT_HIDDEN,
        num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=77, hidden_act="gelu",
        layer_norm_eps=1e-5, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    unet = parts.UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=32,
        cross_attention_dim=2 * TEXT_HIDDEN, transformer_layers_per_block=(1, 1),
        addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + TEXT_HIDDEN,
    )
    vae = parts.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=8, sample_size=256, scaling_factor=0.13025,
    )
    scheduler = parts.EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, timestep_spacing="leading", prediction_type="epsilon",
    )
    return parts.StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(text_config), text_encoder_2=CLIPTextModelWithProjection(text_config),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
    )


def _write_lightning_checkpoints(unet: Any, directory: Path) -> None:
    """The UNet's weights once per step count, each nudged differently so the files differ."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = unet.state_dict()
    for steps, checkpoint in CHECKPOINTS.items():
        noise = torch.Generator().manual_seed(steps)
        nudged = {
            name: (tensor + 0.01 * torch.randn(tensor.shape, generator=noise, dtype=tensor.dtype)).contiguous()
            for name, tensor in state.items()
        }
        save_file(nudged, str(directory / checkpoint.filename), metadata={"format": "pt"})


def main_make_tiny(directory: str) -> int:
    """``boltgate local make-tiny DIR``: write the tiny model and say how to use it."""
    target = make_tiny_model(Path(directory))
    print(f"tiny SDXL-Lightning model written to {target}; serve it with model_dir={target}")
    return 0


if __name__ == "__main__":
    sys.exit(main_make_tiny(sys.argv[1]))
