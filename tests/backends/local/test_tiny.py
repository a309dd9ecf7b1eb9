"""The tiny model is written in the real layout and reads back through the real loader, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backends.local.checkpoints import CHECKPOINTS
from backends.local.tiny import main_make_tiny, write_tokenizer_files


def test_writes_the_base_pipeline_and_four_lightning_checkpoints(tiny_model_dir: Path) -> None:
    index = json.loads((tiny_model_dir / "base" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    for part in ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"):
        assert (tiny_model_dir / "base" / part).is_dir(), part
    files = sorted(path.name for path in (tiny_model_dir / "lightning").iterdir())
    assert files == sorted(checkpoint.filename for checkpoint in CHECKPOINTS.values())


def test_the_unet_is_sdxl_shaped(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "base" / "unet" / "config.json").read_text())
    assert config["addition_embed_type"] == "text_time"
    assert config["cross_attention_dim"] == 64  # the two text encoders' hidden states, concatenated


def test_each_checkpoint_holds_different_weights(tiny_model_dir: Path) -> None:
    states = [load_file(str(tiny_model_dir / "lightning" / c.filename)) for c in CHECKPOINTS.values()]
    assert all(state.keys() == states[0].keys() for state in states)
    name = "conv_in.weight"
    for other in states[1:]:
        assert not torch.equal(states[0][name], other[name])


def test_the_tokenizer_files_cover_every_byte(tmp_path: Path) -> None:
    vocab = json.loads((write_tokenizer_files(tmp_path) / "vocab.json").read_text())
    assert len(vocab) == 2 * 256 + 2
    assert {"<|startoftext|>", "<|endoftext|>", "a</w>"} <= vocab.keys()


def test_the_cli_entry_point_writes_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_make_tiny(str(tmp_path / "tiny")) == 0
    assert (tmp_path / "tiny" / "lightning" / "sdxl_lightning_1step_unet_x0.safetensors").is_file()
    assert str(tmp_path / "tiny") in capsys.readouterr().out
