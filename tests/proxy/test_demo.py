"""With no vendor key and no local model, the gateway serves from the five simulators and says so."""

from __future__ import annotations

import logging

from litestar.testing import AsyncTestClient

from backends.simulators import VENDORS
from proxy.api.app import create_app
from proxy.settings import Settings
from proxy.wiring import build_gateway

BODY = {"prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"}


class Warnings(logging.Handler):
    """What the gateway warns about (Litestar reconfigures the root logger at start, so pytest's
    ``caplog`` does not see it)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"


async def test_no_key_and_no_model_serves_from_every_simulator_and_says_so() -> None:
    warnings = Warnings()
    logging.getLogger("boltgate").addHandler(warnings)
    try:
        async with AsyncTestClient(app=create_app(Settings())) as client:
            ready = await client.get("/readyz")
            served = await client.post("/v1/images/generations", json=BODY)
    finally:
        logging.getLogger("boltgate").removeHandler(warnings)

    assert sorted(entry["route"].split(":")[0] for entry in ready.json()["routes"]) == sorted(VENDORS)
    # The simulator accepted the key the demo handed to the wiring.
    assert served.status_code == 200, served.text
    assert served.headers["x-boltgate-backend"] in VENDORS
    assert "built-in vendor simulators" in warnings.text


async def test_simulators_off_leaves_no_route() -> None:
    running = await build_gateway(Settings(simulators="off"))
    try:
        assert running.gateway.router.routes == []
        assert running.notice == ""
    finally:
        await running.aclose()
