"""Images paid for outlive the process that made them, on the embedded default store.

With ``state_backend = "sqlite"`` (``make run``) the charge, the job's end and the idempotency
record are in the SQLite file and survive a restart; the images they point at must too. Held in
the process's memory, they were gone after a kill (or a plain restart): a job charged and
finished, polled after the restart, handed out URLs that answered 404, and a retry under the
request's ``Idempotency-Key`` was refused ``idempotent_replay_expired``: paid for, never had.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import StartSimulator
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.test_process_faults import route_settings

KEY = {"Authorization": "Bearer bg-team"}
BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256"}
GUARD_S = 30.0


def settings_for(simulator: StartSimulator, data_dir: Path) -> dict[str, object]:
    """The embedded default store, nothing said about images."""
    return {"data_dir": str(data_dir), "api_keys": {"bg-team": {"name": "team"}}, "simulators": "off",
            "probes": {"enabled": False}, "routes": [route_settings(simulator("aigateway"))]}


def finished_job(base_url: str) -> dict[str, Any]:
    job = httpx.post(f"{base_url}/v1/images/jobs", json=BODY, headers=KEY, timeout=10).json()
    give_up = time.monotonic() + GUARD_S
    while (done := httpx.get(f"{base_url}/v1/images/jobs/{job['id']}", headers=KEY, timeout=10).json())["status"] \
            != "succeeded":
        assert time.monotonic() < give_up, done
        time.sleep(0.05)
    return done


def path_of(url: str) -> str:
    return "/v1/images/files/" + url.rsplit("/", 1)[-1]


def test_a_finished_jobs_images_can_be_downloaded_after_a_kill(simulator: StartSimulator, tmp_path: Path) -> None:
    settings = settings_for(simulator, tmp_path / "data")
    first = GatewayProcess(settings, tmp_path / "first.log").start()
    done = finished_job(first.base_url)
    first.kill()

    with GatewayProcess(settings, tmp_path / "second.log") as second:
        polled = httpx.get(f"{second.base_url}/v1/images/jobs/{done['id']}", headers=KEY, timeout=10).json()
        image = httpx.get(second.base_url + path_of(polled["data"][0]["url"]), timeout=10)

    assert polled["status"] == "succeeded" and polled["billing"] == done["billing"]
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


def test_an_idempotent_answer_is_replayed_after_a_kill(simulator: StartSimulator, tmp_path: Path) -> None:
    settings = settings_for(simulator, tmp_path / "data")
    keyed = {**KEY, "Idempotency-Key": "kite-1"}
    first = GatewayProcess(settings, tmp_path / "first.log").start()
    served = httpx.post(f"{first.base_url}/v1/images/generations", json=BODY, headers=keyed, timeout=30)
    assert served.status_code == 200, served.text
    first.kill()

    with GatewayProcess(settings, tmp_path / "second.log") as second:
        replay = httpx.post(f"{second.base_url}/v1/images/generations", json=BODY, headers=keyed, timeout=30)
        image = httpx.get(second.base_url + path_of(replay.json()["data"][0]["url"]), timeout=10) \
            if replay.status_code == 200 else None
        spent = httpx.get(f"{second.base_url}/v1/usage", headers=KEY, timeout=10).json()

    assert replay.status_code == 200, replay.text
    assert replay.headers["x-boltgate-idempotent-replay"] == "true"
    assert [path_of(item["url"]) for item in replay.json()["data"]] == \
        [path_of(item["url"]) for item in served.json()["data"]]
    assert image is not None and image.status_code == 200
    assert (spent["spent_usd"], spent["images"]) == (served.json()["billing"]["cost_usd"], 1)
