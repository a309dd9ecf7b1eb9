"""Eachlabs' simulator: string-valued inputs, predictions polled to an output URL, img2img, failures
as their documented ``status: "error"`` envelope, cancel that stops billing."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from backends.simulators import Fault, SimulatorServer

VENDOR = "eachlabs"


@pytest.fixture
def key(sim: SimulatorServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def create(client: httpx.Client, sim: SimulatorServer, key: dict[str, str], **inputs: Any) -> httpx.Response:
    body = {
        "model": "sdxl-lightning-4step",
        "version": "0.0.1",
        "input": {
            "prompt": "a koi pond",
            "width": "256",
            "height": "320",
            "num_outputs": "1",
            "num_inference_steps": "4",
            "guidance_scale": "0",
            "scheduler": "K_EULER",
            "seed": "9",
            "disable_safety_checker": "true",
            **inputs,
        },
    }
    return client.post(sim.base_url + "/v1/prediction/", headers=key, json=body)


def finished(prediction: dict[str, Any]) -> bool:
    return prediction["status"] in ("success", "error", "cancelled")


def predict(client, sim, key, wait_for, **inputs: Any) -> dict[str, Any]:
    prediction_id = create(client, sim, key, **inputs).raise_for_status().json()["predictionID"]
    return wait_for(f"{sim.base_url}/v1/prediction/{prediction_id}", finished, headers=key, key="status")


def solid_png(color: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_create_accepts_with_a_prediction_id(sim, client, key) -> None:
    response = create(client, sim, key)

    assert response.status_code == 200
    payload = response.json()
    assert payload["status"] == "success"
    assert payload["predictionID"] and payload["message"]


def test_a_prediction_goes_starting_processing_success_with_a_png_url(
    slow_jobs, sim, client, key, wait_for, open_image
) -> None:
    prediction = predict(client, sim, key, wait_for)

    assert prediction["_seen"] == ["created", "processing", "success"]
    assert prediction["metrics"]["predict_time"] == pytest.approx(sim.config.running_s)
    assert prediction["metrics"]["cost"] == pytest.approx(0.00154 * sim.config.running_s)
    assert prediction["urls"]["get"] == f"{sim.base_url}/v1/prediction/{prediction['id']}"
    assert prediction["input"]["prompt"] == "a koi pond"
    image = open_image(client.get(prediction["output"]).content)
    assert (image.format, image.size) == ("PNG", (256, 320))


def test_several_outputs_come_as_a_list(sim, client, key, wait_for) -> None:
    output = predict(client, sim, key, wait_for, num_outputs="2")["output"]

    assert isinstance(output, list) and len(output) == 2
    assert client.get(output[0]).content != client.get(output[1]).content


def test_seeds_decide_the_bytes(sim, client, key, wait_for) -> None:
    ids = [create(client, sim, key, seed=seed).json()["predictionID"] for seed in ("9", "9", "10")]
    done = [wait_for(f"{sim.base_url}/v1/prediction/{id_}", finished, headers=key, key="status") for id_ in ids]
    first, again, other = (client.get(prediction["output"]).content for prediction in done)

    assert first == again
    assert first != other


def test_the_older_x_api_key_header_is_accepted_too(sim, client) -> None:
    assert create(client, sim, {"X-API-Key": sim.api_key}).status_code == 200


def test_a_missing_key_gets_401(sim, client) -> None:
    response = create(client, sim, {})

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or missing API key"}


@pytest.mark.parametrize(
    "inputs",
    [
        {"width": 1024},
        {"num_inference_steps": "11"},
        {"width": "1281"},
        {"num_outputs": "5"},
        {"strength": "0.9"},
        {"prompt": ""},
        {"aspect_ratio": "16:9"},
    ],
)
def test_invalid_input_gets_400(sim, client, key, inputs) -> None:
    response = create(client, sim, key, **inputs)

    assert response.status_code == 400
    assert response.json() == {"error": "Invalid input for model"}


def test_an_unknown_model_gets_400(sim, client, key) -> None:
    body = {"model": "sdxl", "version": "0.0.1", "input": {"prompt": "x"}}

    assert client.post(sim.base_url + "/v1/prediction/", headers=key, json=body).status_code == 400


def test_a_500_fault_answers_failed_to_create(sim, client, key) -> None:
    sim.inject(Fault("status", status=500))

    response = create(client, sim, key)

    assert (response.status_code, response.json()) == (500, {"error": "Failed to create prediction"})


def test_image_to_image_visibly_transforms_the_source(sim, client, key, wait_for, open_image) -> None:
    def edit(color: tuple[int, int, int]) -> Image.Image:
        url = predict(client, sim, key, wait_for, image=solid_png(color), strength="0.3")["output"]
        return open_image(client.get(url).content).convert("RGB")

    red, blue = edit((255, 0, 0)), edit((0, 0, 255))
    plain = open_image(client.get(predict(client, sim, key, wait_for)["output"]).content).convert("RGB")

    corner = (250, 315)  # away from the caption drawn top-left
    assert red.getpixel(corner)[0] >= 170 and blue.getpixel(corner)[2] >= 170
    assert red.getpixel(corner) != (255, 0, 0)
    assert plain.tobytes() not in (red.tobytes(), blue.tobytes())


def test_image_to_image_takes_a_url_source(sim, client, key, wait_for) -> None:
    source = predict(client, sim, key, wait_for)["output"]

    edited = predict(client, sim, key, wait_for, image=source, strength="0.5")

    assert edited["status"] == "success"
    assert client.get(edited["output"]).content != client.get(source).content


@pytest.mark.parametrize("payload", [b"hello", b"\x89PNG\r\n\x1a\n truncated"])
def test_a_source_that_is_not_a_whole_image_gets_400(sim, client, key, payload) -> None:
    response = create(client, sim, key, image="data:image/png;base64," + base64.b64encode(payload).decode())

    assert response.status_code == 400


def test_stuck_queued_stays_created(sim, client, key) -> None:
    """Their docs: a prediction held back by a concurrency cap is a prolonged ``created``."""
    sim.inject(Fault("stuck_queued"))
    prediction_id = create(client, sim, key).json()["predictionID"]
    time.sleep(0.15)

    assert client.get(f"{sim.base_url}/v1/prediction/{prediction_id}", headers=key).json()["status"] == "created"


def test_fail_midway_errors_with_their_envelope_and_bills_its_run_time(
    slow_jobs, sim, client, key, wait_for
) -> None:
    sim.inject(Fault("fail_midway"))

    prediction = predict(client, sim, key, wait_for)

    assert prediction["_seen"] == ["created", "processing", "error"]
    assert "error" not in prediction  # no top-level error: the reason is in output
    assert prediction["output"]["error_code"] == "PROVIDER_FAILED"
    assert prediction["output"]["error_message"]
    assert prediction["metrics"]["predict_time"] == pytest.approx(sim.config.running_s)
    assert prediction["metrics"]["cost"] > 0


def test_output_404_succeeds_with_an_output_that_answers_404(sim, client, key, wait_for) -> None:
    sim.inject(Fault("output_404"))

    assert client.get(predict(client, sim, key, wait_for)["output"]).status_code == 404


def test_cancel_through_urls_cancel_is_recorded_and_bills_nothing(sim, client, key) -> None:
    prediction_id = create(client, sim, key).json()["predictionID"]
    prediction = client.get(f"{sim.base_url}/v1/prediction/{prediction_id}", headers=key).json()

    response = client.post(prediction["urls"]["cancel"], headers=key)

    assert response.json() == {"status": "success", "message": "Prediction canceled successfully"}
    cancelled = client.get(prediction["urls"]["get"], headers=key).json()
    assert cancelled["status"] == "cancelled" and cancelled["metrics"]["cost"] == 0
    assert sim.cancels == [prediction_id]
    assert sim.billed_usd() == 0


def test_a_prediction_that_ran_is_billed_by_its_run_time(sim, client, key, wait_for) -> None:
    prediction = predict(client, sim, key, wait_for)

    assert float(sim.billed_usd()) == pytest.approx(prediction["metrics"]["cost"])
    assert sim.billed_usd() > 0


def test_an_unknown_prediction_gets_404(sim, client, key) -> None:
    response = client.get(sim.base_url + "/v1/prediction/nope", headers=key)

    assert (response.status_code, response.json()) == (404, {"error": "Prediction not found"})


def test_an_nsfw_fault_is_a_safety_refusal_in_their_error_envelope(sim, client, key, wait_for) -> None:
    sim.inject(Fault("nsfw"))

    prediction = predict(client, sim, key, wait_for)

    assert prediction["status"] == "error"
    assert prediction["output"]["error_code"] == "CONTENT_MODERATION"


@pytest.mark.parametrize(("status", "details"), [(402, True), (429, True), (400, False)])
def test_status_faults_answer_their_error_reference(sim, client, key, status, details) -> None:
    sim.inject(Fault("status", status=status))

    body = create(client, sim, key).json()

    assert ("details" in body) == details
    assert body["error"]
