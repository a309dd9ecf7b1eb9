"""A stand-in pipeline for the batching tests that must control exactly when a batch finishes."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from PIL import Image

from core.request import ImageRequest


class GatedPipeline:
    """A stand-in pipeline that holds each batch until the test opens the gate; records batches."""

    device = "cpu"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[ImageRequest]] = []

    def run(self, requests: Sequence[ImageRequest]) -> list[list[Image.Image]]:
        self.batches.append(list(requests))
        self.started.set()
        if not self.gate.wait(timeout=10):
            raise RuntimeError("the test never opened the gate")
        return [[Image.new("RGB", (r.width, r.height), (r.seed % 256, 0, 0)) for _ in range(r.n)]
                for r in requests]

    def memory_bytes(self) -> int:
        return 0

    def eager_fallbacks(self) -> dict[tuple[str, str], int]:
        return {("unet", "shape_not_warmed"): len(self.batches)}
