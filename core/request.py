"""The one request model: every front door produces an ``ImageRequest``, every backend consumes it."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import ModelNotFound

CANONICAL_MODEL = "sdxl-lightning"
MODEL_ALIASES: frozenset[str] = frozenset(
    {
        "sdxl-lightning",
        "sdxl-lightning-4step",
        "sd-xl-lightning",
        "bytedance/stable-diffusion-xl-lightning",
        "bytedance/sdxl-lightning",
        "bytedance/sd-xl-lightning",
        "@cf/bytedance/stable-diffusion-xl-lightning",
    }
)
"""Names the vendors use for the same model; all resolve to ``CANONICAL_MODEL``."""

MAX_SEED = 2**32 - 1
MIN_SIDE, MAX_SIDE = 256, 1536
SIDE_STEP = 8
"""Sides are multiples of this (SDXL's latent is 1/8 of the image)."""
MAX_PROMPT_CHARS = 4000
MAX_N = 4
MAX_STEPS = 50
MAX_GUIDANCE = 20.0
MAX_USER_CHARS = 256

OutputFormat = Literal["png", "jpeg", "webp"]
ResponseFormat = Literal["url", "b64_json"]
Side = Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_STEP)]


def resolve_model(name: str | None) -> str:
    """Map any alias (case-insensitive) to the canonical model, or raise 404 model_not_found."""
    if name is None or name.strip().lower() in MODEL_ALIASES:
        return CANONICAL_MODEL
    raise ModelNotFound(f"The model '{name}' does not exist; boltgate serves "
                        f"{', '.join(sorted(MODEL_ALIASES))}", param="model")


def draw_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


class ImageRequest(BaseModel):
    """What to generate, independent of who asked and who will serve it."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    model: str = CANONICAL_MODEL
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    n: int = Field(default=1, ge=1, le=MAX_N)
    width: Side = 1024
    height: Side = 1024
    steps: int = Field(default=4, ge=1, le=MAX_STEPS)
    guidance_scale: float = Field(default=0.0, ge=0.0, le=MAX_GUIDANCE)
    seed: int = Field(default_factory=draw_seed, ge=0, le=MAX_SEED)
    output_format: OutputFormat = "png"
    output_compression: int | None = Field(default=None, ge=0, le=100)
    """The jpeg/webp encoder quality the client asked for (None: the image as the vendor made it)."""
    response_format: ResponseFormat = "url"
    user: str | None = Field(default=None, max_length=MAX_USER_CHARS)
    """Who the client says asked (OpenAI's ``user``/``safety_identifier``): logged, never sent on."""
    init_image: bytes | None = Field(default=None, repr=False)
    """For image-to-image: the validated source image (PNG, JPEG or WebP bytes)."""
    strength: float = Field(default=0.6, ge=0.0, le=1.0)
    max_price_usd: Decimal | None = Field(default=None, ge=0)
    """Skip every route whose price for this request is above this."""

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def is_edit(self) -> bool:
        return self.init_image is not None

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1_000_000
