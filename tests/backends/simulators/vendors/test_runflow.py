"""Runflow's simulator: runs created at once, polled through their lifecycle, never cancelable, always billed."""

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


def run_url(sim: SimulatorServer, run: dict[str, Any]) -> str:
    return f"{sim.base_url}/v1/runs/{run['id']}"


def run_to_end(client, sim, bearer, wait_for, **inputs: Any) -> dict[str, Any]:
    run = create(client, sim, bearer, **inputs).raise_for_status().json()
    return wait_for(run_url(sim, run), finished, headers=bearer, key="status_code")


def test_create_answers_at_once_with_what_their_sdk_calls_a_dispatched_run(sim, client, bearer) -> None:
    response = create(client, sim, bearer)

    assert response.status_code == 201
    run = response.json()
    assert set(run) == {"id", "status_code", "model", "created_at"}
    assert run["status_code"] == "queued"
    assert run["id"].startswith("run_")
    polled = client.get(run_url(sim, run), headers=bearer).json()
    assert polled["output"] is None and polled["cost"] is None
    assert polled["client_ref"] == "ref-1"


def test_a_run_goes_queued_running_succeeded_with_a_fetchable_jpeg(
    slow_jobs, sim, client, bearer, wait_for, open_image
) -> None:
    run = run_to_end(client, sim, bearer, wait_for)

    assert run["_seen"] == ["queued", "running", "succeeded"]
    assert run["cost"] == "0.003"
    assert run["duration_ms"] == round(sim.config.running_s * 1000)
    assert run["started_at"] < run["completed_at"]
    image = open_image(client.get(run["output"]["image_urls"][0]).content)
    assert (image.format, image.size) == ("JPEG", (384, 256))


def test_dispatching_shows_between_queued_and_running_when_configured(slow_jobs, sim, client, bearer, wait_for) -> None:
    sim.config.dispatching_s = sim.config.queued_s

    assert run_to_end(client, sim, bearer, wait_for)["_seen"] == ["queued", "dispatching", "running", "succeeded"]


def test_seeds_decide_the_bytes(sim, client, bearer, wait_for) -> None:
    runs = [create(client, sim, bearer, seed=seed).json() for seed in (5, 5, 6)]  # run side by side
    done = [wait_for(run_url(sim, run), finished, headers=bearer, key="status_code") for run in runs]
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
def test_status_faults_answer_runflows_codes(sim, client, bearer, status, code) -> None:
    sim.inject(Fault("status", status=status))

    response = create(client, sim, bearer)

    assert (response.status_code, response.json()["code"]) == (status, code)
    # Their Rate limits page: "429 responses do not currently carry rate-limit headers".
    assert not {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining"} & {name.lower() for name in
                                                                               response.headers}


def test_stuck_queued_never_leaves_the_queue(sim, client, bearer) -> None:
    sim.inject(Fault("stuck_queued"))
    run = create(client, sim, bearer).json()
    time.sleep(0.15)

    assert client.get(run_url(sim, run), headers=bearer).json()["status_code"] == "queued"
    assert sim.billed_usd() == 0  # a run that never ran costs nothing


def test_fail_midway_runs_then_fails_with_failure_fields_and_a_cost(slow_jobs, sim, client, bearer, wait_for) -> None:
    sim.inject(Fault("fail_midway"))

    run = run_to_end(client, sim, bearer, wait_for)

    assert run["_seen"] == ["queued", "running", "failed"]
    assert run["failure_code"] and run["failure_message"] and run["failure_stage"]
    assert Decimal(run["cost"]) > 0
    assert run["output"] is None


def test_output_404_succeeds_with_urls_that_answer_404(sim, client, bearer, wait_for) -> None:
    sim.inject(Fault("output_404"))

    run = run_to_end(client, sim, bearer, wait_for)

    assert run["status_code"] == "succeeded"
    assert client.get(run["output"]["image_urls"][0]).status_code == 404


def test_there_is_no_public_cancel(sim, client, bearer) -> None:
    run = create(client, sim, bearer).json()

    response = client.post(f"{run_url(sim, run)}/cancel", headers=bearer)

    assert response.status_code == 404
    assert sim.cancels == []


def test_a_run_nobody_polls_any_more_is_billed_all_the_same(sim, client, bearer) -> None:
    """What the gateway must book as a loss when it abandons a Runflow run."""
    create(client, sim, bearer).raise_for_status()
    assert sim.billed_usd() == 0  # still running
    time.sleep(0.15)

    assert sim.billed_usd() == Decimal("0.003")
    assert client.get(f"{sim.base_url}/_sim/billing").json() == {"billed_usd": "0.003"}


def test_an_undocumented_input_field_is_refused(sim, client, bearer) -> None:
    response = create(client, sim, bearer, guidance_scale=1.0)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "input.guidance_scale"


def test_an_nsfw_fault_blacks_out_the_image_without_an_undocumented_flag(
    sim, client, bearer, wait_for, open_image
) -> None:
    sim.inject(Fault("nsfw"))

    run = run_to_end(client, sim, bearer, wait_for)

    assert set(run["output"]) == {"image_urls"}
    image = open_image(client.get(run["output"]["image_urls"][0]).content)
    assert max(high for _, high in image.convert("RGB").getextrema()) < 8  # JPEG noise around black


def test_runs_are_searched_by_a_filter_on_client_ref(sim, client, bearer) -> None:
    mine = create(client, sim, bearer).json()  # client_ref ref-1
    client.post(sim.base_url + CREATE, headers=bearer, json={"input": {"prompt": "x"}, "client_ref": "ref-2"})

    found = client.get(f"{sim.base_url}/v1/runs", headers=bearer, params={"q": "client_ref:ref-1"}).json()
    everything = client.get(f"{sim.base_url}/v1/runs", headers=bearer, params={"limit": "10"}).json()
    refused = client.get(f"{sim.base_url}/v1/runs", headers=bearer, params={"q": "prompt:x"})

    assert [(run["id"], run["client_ref"]) for run in found["items"]] == [(mine["id"], "ref-1")]
    assert [run["client_ref"] for run in everything["items"]] == ["ref-2", "ref-1"]  # newest first
    assert refused.status_code == 422
