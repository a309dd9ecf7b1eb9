"""Settings of one simulator. Mutable on purpose: a test may change timing on a running server."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

RESPONSE_SHAPES: tuple[str, ...] = ("data", "data_b64", "images", "image_url")
"""imageapi.org's answer forms (unconfirmed in its documentation, so every accepted form is servable):
``{"data": [{"url"}]}``, ``{"data": [{"b64_json"}]}``, ``{"images": [url]}``, ``{"image_url": url}``."""


@dataclass(slots=True)
class SimulatorConfig:
    api_key: str = "sim-key"
    latency_s: float = 0.0
    """Added before answering every vendor request (not the ``/_sim/`` admin routes)."""
    queued_s: float = 0.05
    """Job vendors: time a job spends queued (Runflow ``queued``, Eachlabs ``starting``)."""
    dispatching_s: float = 0.0
    """Runflow: time in ``dispatching`` between queued and running (0 skips the state)."""
    running_s: float = 0.05
    """Job vendors: time a job spends running; Eachlabs reports it as ``predict_time``."""
    response_shape: str = "data"
    """imageapi.org only: one of ``RESPONSE_SHAPES``."""
    runflow_model: str = "bytedance/sd-xl-lightning"
    """Runflow's model path in ``/v1/models/{owner}/{slug}/runs`` (unconfirmed upstream)."""
    url_ttl_s: float = 3600.0
    """How long served image URLs answer before they expire with 404."""
    realistic_images: bool = False
    """Grain the images so they weigh like real SDXL output (~1.5 MB PNG at 1024x1024)."""
    request_log_size: int = 10_000
    runflow_price_usd: Decimal = Decimal("0.003")
    """Runflow's fixed price per image, reported as the run's ``cost``."""
    eachlabs_usd_per_second: Decimal = Decimal("0.00154")
    """Eachlabs' price per second of ``predict_time``, reported as ``metrics.cost``."""

    def __post_init__(self) -> None:
        if self.response_shape not in RESPONSE_SHAPES:
            raise ValueError(f"response_shape must be one of {RESPONSE_SHAPES}, not {self.response_shape!r}")
