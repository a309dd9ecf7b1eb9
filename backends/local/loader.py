"""Load SDXL base components and Lightning UNets, from the HF hub or from a model directory.

The recipe of the SDXL-Lightning model card, with one change: the base UNet is never loaded.
Only its config is read; each Lightning UNet is built from it on the ``meta`` device (no random
initialisation of 2.6 billion parameters) and takes its weights from the checkpoint with
``safetensors.torch.load_file``. Text encoders, tokenizers and the VAE load once and are shared
by every step count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
from safetensors.torch import load_file
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from backends.local.checkpoints import (
    FP16_FIX_VAE_SUBDIR,
    LightningCheckpoint,
    base_dir,
    lightning_path,
)
from backends.local.config import LocalBackendConfig

log = logging.getLogger(__name__)

_diffusers: Any = diffusers
"""diffusers is only partly annotated: its classes are used as untyped (``Any``) here."""

_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
}


def resolve_device(config: LocalBackendConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    return torch.device(config.device)


def resolve_dtype(config: LocalBackendConfig, device: torch.device) -> torch.dtype:
    """fp16 on CUDA, fp32 on the CPU; half precision asked for on the CPU falls back to fp32."""
    if config.dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if device.type == "cpu" and config.dtype == "float16":
        log.info("float16 is not served on the CPU; using float32")
        return torch.float32
    return _DTYPES[config.dtype]


@dataclass(slots=True)
class BaseComponents:
    """Everything of SDXL base except its UNet: shared by the UNets of every step count."""

    vae: Any
    text_encoder: Any
    text_encoder_2: Any
    tokenizer: Any
    tokenizer_2: Any
    unet_config: dict[str, Any]
    scheduler_config: dict[str, Any]


class WeightSource:
    """Where the weights come from: a local model directory, else the hub (cached by huggingface_hub)."""

    def __init__(self, config: LocalBackendConfig, dtype: torch.dtype) -> None:
        self.config = config
        self.local = config.model_dir is not None
        self.base: str = str(base_dir(config.model_dir)) if config.model_dir else config.base_model_id
        half = dtype in (torch.float16, torch.bfloat16)
        self.variant: str | None = config.hub_variant if half and not self.local else None

    def pretrained_kwargs(self, subfolder: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"subfolder": subfolder}
        if self.local:
            kwargs["local_files_only"] = True
        if self.variant:
            kwargs["variant"] = self.variant
        return kwargs

    def checkpoint_path(self, checkpoint: LightningCheckpoint) -> Path:
        if self.config.model_dir is not None:
            path = lightning_path(self.config.model_dir, checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"Lightning checkpoint missing: {path}")
            return path
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(self.config.lightning_repo, checkpoint.filename))

    def fp16_fix_vae(self) -> str:
        if self.config.model_dir is not None and (self.config.model_dir / FP16_FIX_VAE_SUBDIR).is_dir():
            return str(self.config.model_dir / FP16_FIX_VAE_SUBDIR)
        return self.config.fp16_fix_vae_id


def load_base_components(source: WeightSource, device: torch.device, dtype: torch.dtype) -> BaseComponents:
    """Text encoders, tokenizers and VAE of the base model, on ``device`` in ``dtype``."""
    base = source.base
    log.info("loading SDXL base components from %s", base)
    text_encoder = CLIPTextModel.from_pretrained(base, **source.pretrained_kwargs("text_encoder"))
    text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(base, **source.pretrained_kwargs("text_encoder_2"))
    vae = load_vae(source, device, dtype)
    tokenizer_kwargs: dict[str, Any] = {"local_files_only": True} if source.local else {}
    return BaseComponents(
        vae=vae,
        text_encoder=_placed(text_encoder, device, dtype),
        text_encoder_2=_placed(text_encoder_2, device, dtype),
        tokenizer=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer", **tokenizer_kwargs),
        tokenizer_2=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer_2", **tokenizer_kwargs),
        unet_config=dict(_diffusers.UNet2DConditionModel.load_config(base, **_config_kwargs(source, "unet"))),
        scheduler_config=dict(
            _diffusers.EulerDiscreteScheduler.load_config(base, **_config_kwargs(source, "scheduler"))
        ),
    )


def load_vae(source: WeightSource, device: torch.device, dtype: torch.dtype) -> Any:
    """The VAE in the dtype it keeps for good (``vae.VaeCodec`` never switches it per call).

    The fp16-fix VAE decodes in half precision without overflowing; it is used when asked for, and
    by default (``auto``) whenever the model runs in float16. Otherwise the base VAE runs in
    float32 next to a float16 UNet (its fp16 weights overflow), or in the model's dtype.
    """
    wanted = source.config.fp16_fix_vae
    if wanted is True or (wanted == "auto" and dtype == torch.float16):
        vae_id = source.fp16_fix_vae()
        try:
            vae = _diffusers.AutoencoderKL.from_pretrained(vae_id, torch_dtype=dtype, local_files_only=source.local)
        except (OSError, ValueError) as exc:
            if wanted is True:
                raise
            log.warning("the fp16-fix VAE %s could not be loaded (%s); the base VAE decodes in float32", vae_id, exc)
        else:
            log.info("decoding with the fp16-fix VAE %s in %s", vae_id, dtype)
            return _placed(vae, device, dtype)
    vae_dtype = torch.float32 if dtype == torch.float16 else dtype
    vae = _diffusers.AutoencoderKL.from_pretrained(source.base, torch_dtype=vae_dtype,
                                                   **source.pretrained_kwargs("vae"))
    log.info("decoding with the base VAE in %s", vae_dtype)
    return _placed(vae, device, vae_dtype)


def _placed(module: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """``module`` on ``device`` in ``dtype``, in eval mode (casting only when the dtype differs)."""
    module = module.to(device=device)
    if module.dtype != dtype:
        module = module.to(dtype=dtype)
    return module.eval()


def _config_kwargs(source: WeightSource, subfolder: str) -> dict[str, Any]:
    return {"subfolder": subfolder, "local_files_only": source.local}


def load_lightning_unet(
    path: Path, unet_config: dict[str, Any], device: torch.device, dtype: torch.dtype
) -> Any:
    """A UNet built from the base config, holding the Lightning checkpoint's weights (strictly)."""
    with torch.device("meta"):
        unet = _diffusers.UNet2DConditionModel.from_config(unet_config)
    state = load_file(str(path), device=str(device))
    unet.load_state_dict(state, strict=True, assign=True)
    leftover = [name for name, tensor in (*unet.named_parameters(), *unet.named_buffers()) if tensor.is_meta]
    if leftover:
        raise RuntimeError(f"{path.name} left tensors uninitialised: {leftover[:5]}")
    return _placed(unet, device, dtype)


def lightning_scheduler(scheduler_config: dict[str, Any], checkpoint: LightningCheckpoint) -> Any:
    """Euler with trailing timesteps, as Lightning was distilled; x0 prediction for the 1-step UNet."""
    return _diffusers.EulerDiscreteScheduler.from_config(
        scheduler_config, timestep_spacing="trailing", prediction_type=checkpoint.prediction_type
    )
