"""``create_app`` builds the whole gateway from its settings, once, and closes it when it stops.

Scripted backends go in through ``Overrides``; everything around them (keys, billing, the image
store) comes from the settings, exactly as when the gateway serves real vendors.
"""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient

from proxy.api.app import create_app
from proxy.settings import Settings
from proxy.wiring import Overrides
from tests.proxy.api.served_app import serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

BODY = {"prompt": "a lighthouse", "size": "256x256"}


async def test_the_client_keys_in_the_settings_guard_the_images() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=["bg-team"]) as client:
        without = await client.post("/v1/images/generations", json=BODY)
        wrong = await client.post("/v1/images/generations", json=BODY, headers={"Authorization": "Bearer bg-guess"})
        right = await client.post("/v1/images/generations", json=BODY, headers={"Authorization": "Bearer bg-team"})
        usage = await client.get("/v1/usage", headers={"Authorization": "Bearer bg-team"})

    assert (without.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert usage.json()["name"] == "key-1"
    assert usage.json()["by_vendor"]["runflow"]["images"] == 1


async def test_the_image_store_the_settings_name_serves_the_downloads(tmp_path: Path) -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], image_store="directory", image_dir=tmp_path) as client:
        served = await client.post("/v1/images/generations", json=BODY)
        name = served.json()["data"][0]["url"].rsplit("/", 1)[1]
        downloaded = await client.get(f"/v1/images/files/{name}")

    assert [path.name for path in tmp_path.rglob("*.png")] == [name]
    assert downloaded.status_code == 200
    assert downloaded.content == next(tmp_path.rglob("*.png")).read_bytes()


async def test_stopping_the_app_closes_the_routes_it_served() -> None:
    backend = ScriptedBackend("runflow")
    app = create_app(Settings(simulators="off"), Overrides(routes=[route_to(backend)]))
    async with AsyncTestClient(app=app) as client:
        assert [entry["route"] for entry in (await client.get("/readyz")).json()["routes"]] == ["runflow:r1"]
        assert not backend.closed

    assert backend.closed


async def test_each_start_builds_the_gateway_afresh() -> None:
    app = create_app(Settings(simulators="off", state_backend="memory"),  # on SQLite, images outlive a start
                     Overrides(routes=[route_to(ScriptedBackend("runflow"))]))
    async with AsyncTestClient(app=app) as client:
        url = (await client.post("/v1/images/generations", json=BODY)).json()["data"][0]["url"]
        assert (await client.get(url)).status_code == 200
    async with AsyncTestClient(app=app) as client:
        # A new in-memory state: the first run's images went with it.
        assert (await client.get(url)).status_code == 404
