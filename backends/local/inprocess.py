"""The local pipeline inside the gateway's own process, behind the ``Backend`` protocol.

For a gateway that runs on the GPU machine itself. The model loads on the first request (or at
``start()``); requests are batched like the worker's, and each result reports the GPU-seconds
attributed to it, which the pricing turns into a cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from backends.base import BackendResult, Capabilities, GeneratedImage, LoadState, ProbeOutcome
from backends.local.config import LocalBackendConfig
from backends.local.engine import LocalEngine, PipelineFactory, load_real_pipeline
from core.deadline import Deadline
from core.errors import BackendError, InvalidRequest, VendorRejectedRequest, VendorTimeout
from core.request import ImageRequest


class LocalPipelineBackend:
    """SDXL-Lightning on this machine, vendor ``local``."""

    def __init__(self, config: LocalBackendConfig | None = None, *, region: str = "in-process",
                 factory: PipelineFactory = load_real_pipeline) -> None:
        self.config = config or LocalBackendConfig()
        self._region = region
        self.engine = LocalEngine(self.config, factory=factory)

    @classmethod
    def from_options(cls, options: Mapping[str, str], *, region: str = "in-process") -> LocalPipelineBackend:
        """From a route's string options (the fields of ``LocalBackendConfig``)."""
        return cls(LocalBackendConfig.from_options(options), region=region)

    @property
    def vendor(self) -> str:
        return "local"

    @property
    def region(self) -> str:
        return self._region

    @property
    def capabilities(self) -> Capabilities:
        return self.engine.capabilities

    @property
    def load_state(self) -> LoadState:
        return self.engine.load_state

    async def probe(self, timeout_s: float) -> ProbeOutcome:
        """In process there is nothing to reach: the probe reports the model's load state."""
        state = self.engine.load_state
        if state == "failed":
            return ProbeOutcome(False, f"the model failed to load: {self.engine.load_error}")
        return ProbeOutcome(True, f"model {state}")

    async def start(self) -> None:
        """Load and warm up now rather than on the first request."""
        await self.engine.start()

    async def generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
        try:
            async with asyncio.timeout(deadline.remaining()):
                await self.engine.start()
                outcome = await self.engine.generate(request, deadline)
        except TimeoutError as exc:
            raise VendorTimeout("the local pipeline did not answer before the deadline") from exc
        except InvalidRequest as exc:
            if exc.param == "image":  # an unreadable init image: every backend would refuse it
                raise VendorRejectedRequest(exc.message, status=400, param=exc.param) from exc
            # The router filters on capabilities; whatever else this backend refuses, another may serve.
            raise BackendError(exc.message, status=400, param=exc.param) from exc
        return BackendResult(
            images=[GeneratedImage(data=data) for data in outcome.images],
            run_seconds=outcome.gpu_seconds,
        )

    async def aclose(self) -> None:
        await self.engine.aclose()
