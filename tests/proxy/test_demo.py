"""With no vendor key and no local model, the gateway serves from the five simulators and says so."""

from __future__ import annotations

from backends.simulators import VENDORS
from proxy.settings import Settings
from proxy.wiring import build_gateway


async def test_no_key_and_no_model_routes_to_every_simulator() -> None:
    running = await build_gateway(Settings())
    try:
        assert sorted(route.vendor for route in running.gateway.router.routes) == sorted(VENDORS)
        assert "built-in vendor simulators" in running.notice
    finally:
        await running.aclose()


async def test_simulators_off_leaves_no_route() -> None:
    running = await build_gateway(Settings(simulators="off"))
    try:
        assert running.gateway.router.routes == []
        assert running.notice == ""
    finally:
        await running.aclose()
