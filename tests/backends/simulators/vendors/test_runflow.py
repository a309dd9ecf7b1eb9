"""Runflow's simulator: runs created at once, polled through their lifecycle, cancelable."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from backends.simulators import Fault, SimulatorServer

VENDOR = "runflow"
CREATE = "/v1/models/bytedance/sd-xl-lightning/runs"


def create(
    client: httpx.Client, sim: SimulatorServer, bearer: dict[str, str], path: str = CREATE, **inputs: Any
) -> httpx.Response:
    body = {
        "input": {
            "prompt": "a stone bridge",
            "seed": 5,
            "width": 384,
            "height": 256,
            "steps": 4,
            "guidance": 0,
            **inputs,
        },
        "client_ref": "ref-1",
    }
    return client.post(sim.base_url + path, headers=bearer, json=body)


def finished(run: dict[str, Any]) -> bool:
    return run["status_code"] in ("succeeded", "failed", "canceled")


def run_to_end(client, sim, bearer, wait_for, **inputs: Any) -> dict[str, Any]:
    run = create(client, sim, bearer, **inputs).raise_for_status().json()
    return wait_for(run["links"]["self"], finished, headers=bearer, key="status_code")


def test_create_answers_at_once_with_a_queued_run(sim, client, bearer) -> None:
    response = create(client, sim, bearer)

    assert response.status_code == 201
    run = response.json()
    assert run["status_code"] == "queued"
    assert run["id"].startswith("run_")
    assert run["output"] is None and run["cost"] is None
    assert run["client_ref"] == "ref-1"
    assert run["links"]["self"] == f"{sim.base_url}/v1/runs/{run['id']}"


def test_a_run_goes_queued_running_succeeded_with_a_fetchable_jpeg(
    slow_jobs, sim, client, bearer, wait_for, open_image
) -> None:
    run = run_to_end(client, sim, bearer, wait_for)

    assert run["_seen"] == ["queued", "running", "succeeded"]
    assert run["cost"] == "0.003"
    assert run["duration_ms"] == round(sim.config.running_s * 1000)
    assert run["started_at"] < run["finished_at"]
    image = open_image(client.get(run["output"]["image_urls"][0]).content)
    assert (image.format, image.size) == ("JPEG", (384, 256))


def test_dispatching_shows_between_queued_and_running_when_configured(slow_jobs, sim, client, bearer, wait_for) -> None:
    sim.config.dispatching_s = sim.config.queued_s

    assert run_to_end(client, sim, bearer, wait_for)["_seen"] == ["queued", "dispatching", "running", "succeeded"]


def test_seeds_decide_the_bytes(sim, client, bearer, wait_for) -> None:
    runs = [create(client, sim, bearer, seed=seed).json() for seed in (5, 5, 6)]  # run side by side
    done = [wait_for(run["links"]["self"], finished, headers=bearer, key="status_code") for run in runs]
    first, again, other = (client.get(run["output"]["image_urls"][0]).content for run in done)

    assert first == again
    assert first != other


def test_a_wrong_key_gets_unauthorized(sim, client) -> None:
    response = create(client, sim, {"Authorization": "Bearer nope"})

    assert response.status_code == 401
    assert response.json() == {"code": "UNAUTHORIZED", "message": "Missing or invalid API key", "errors": []}


@pytest.mark.parametrize(
    ("inputs", "field"),
    [({"steps": 13}, "input.steps"), ({"prompt": None}, "input.prompt"), ({"width": 4096}, "input.width")],
)
def test_invalid_input_gets_422_with_field_errors(sim, client, bearer, inputs, field) -> None:
    response = create(client, sim, bearer, **inputs)

    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "VALIDATION_ERROR"
    assert payload["errors"][0]["field"] == field


def test_the_model_path_is_a_setting(sim, client, bearer) -> None:
    assert create(client, sim, bearer, path="/v1/models/sd-xl-lightning/runs").status_code == 404
    sim.config.runflow_model = "acme/lightning"

    assert create(client, sim, bearer, path="/v1/models/acme/lightning/runs").status_code == 201
    assert create(client, sim, bearer).json()["code"] == "MODEL_NOT_FOUND"


def test_an_unknown_run_gets_run_not_found(sim, client, bearer) -> None:
    response = client.get(sim.base_url + "/v1/runs/run_missing", headers=bearer)

    assert response.status_code == 404
    assert response.json()["code"] == "RUN_NOT_FOUND"


@pytest.mark.parametrize(
    ("status", "code"),
    [(402, "INSUFFICIENT_CREDIT"), (403, "PERMISSION_DENIED"), (429, "RATE_LIMITED"), (503, "MODEL_UNAVAILABLE")],
)
def test_status_faults_answer_runflows_codes_and_429_has_no_retry_after(sim, client, bearer, status, code) -> None:
    sim.inject(Fault("status", status=status))

    response = create(client, sim, bearer)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert "Retry-After" not in response.headers


def test_stuck_queued_never_leaves_the_queue(sim, client, bearer) -> None:
    sim.inject(Fault("stuck_queued"))
    run = create(client, sim, bearer).json()
    time.sleep(0.15)

    assert client.get(run["links"]["self"], headers=bearer).json()["status_code"] == "queued"


def test_fail_midway_runs_then_fails_with_failure_fields_and_a_cost(slow_jobs, sim, client, bearer, wait_for) -> None:
    sim.inject(Fault("fail_midway"))

    run = run_to_end(client, sim, bearer, wait_for)

    assert run["_seen"] == ["queued", "running", "failed"]
    assert run["failure_code"] and run["failure_message"] and run["failure_stage_code"]
    assert Decimal(run["cost"]) > 0
    assert run["output"] is None


def test_output_404_succeeds_with_urls_that_answer_404(sim, client, bearer, wait_for) -> None:
    sim.inject(Fault("output_404"))

    run = run_to_end(client, sim, bearer, wait_for)

    assert run["status_code"] == "succeeded"
    assert client.get(run["output"]["image_urls"][0]).status_code == 404


def test_a_cancel_stops_the_run_and_is_recorded(sim, client, bearer) -> None:
    run = create(client, sim, bearer).json()

    response = client.post(run["links"]["cancel"], headers=bearer)

    assert response.status_code == 200
    assert response.json()["status_code"] == "canceled"
    assert response.json()["cost"] == "0"
    assert client.get(run["links"]["self"], headers=bearer).json()["status_code"] == "canceled"
    assert sim.cancels == [run["id"]]


def test_cancelling_a_finished_run_gets_409_but_is_still_recorded(sim, client, bearer, wait_for) -> None:
    run = run_to_end(client, sim, bearer, wait_for)

    response = client.post(run["links"]["cancel"], headers=bearer)

    assert response.status_code == 409
    assert sim.cancels == [run["id"]]


def test_an_nsfw_fault_flags_the_output_and_blacks_it_out(sim, client, bearer, wait_for, open_image) -> None:
    sim.inject(Fault("nsfw"))

    run = run_to_end(client, sim, bearer, wait_for)

    assert run["output"]["nsfw_content_detected"] == [True]
    image = open_image(client.get(run["output"]["image_urls"][0]).content)
    assert max(high for _, high in image.convert("RGB").getextrema()) < 8  # JPEG noise around black
