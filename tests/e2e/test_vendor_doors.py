"""Vendor doors end to end: a request in a vendor's own documented shape, sent to the gateway's
door for that vendor, is answered in that vendor's shape while another vendor serves it (the
door's own vendor is turned off), charged once however often it is polled. Runflow's and
Eachlabs' creates answer at once, as the vendors' do, while the serving vendor still holds the
request (a ``hold`` fault); polls then follow the run to its end.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from PIL import Image

from backends.simulators import Fault
from backends.vendors.contracts import examples
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

KEYS = {"bg-door": {"name": "door"}, "bg-other": {"name": "other"}}
BEARER = {"Authorization": "Bearer bg-door"}


def documented_request(vendor: str) -> dict[str, Any]:
    (example,) = [e for e in examples(vendor) if e.role == "request"]
    return dict(example.body)


def small(body: dict[str, Any], width: str = "width", height: str = "height") -> dict[str, Any]:
    """The documented example at 256x256 (the simulators render every pixel)."""
    return {**body, width: type(body[width])(256), height: type(body[height])(256)}


def spent(server_url: str, headers: dict[str, str]) -> Decimal:
    usage = httpx.get(f"{server_url}/v1/usage", headers=headers).json()
    return Decimal(usage["spent_usd"])


def image_at(url: str) -> Image.Image:
    download = httpx.get(url)
    assert download.status_code == 200, download.text
    return Image.open(io.BytesIO(download.content))


def door_gateway(simulator: StartSimulator, gateway: StartGateway, door_vendor: str, serving_vendor: str) -> Any:
    """The door's own vendor first in line but refusing connections; another vendor behind it."""
    off = simulator(door_vendor)
    off.refuse_connections()
    on = simulator(serving_vendor)
    server = gateway(route_to(off, priority=1, max_attempts=1), route_to(on, priority=2), api_keys=KEYS)
    return server, off, on


def usage(server_url: str, headers: dict[str, str]) -> dict[str, Any]:
    return httpx.get(f"{server_url}/v1/usage", headers=headers).json()  # type: ignore[no-any-return]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < give_up, f"never: {what}"
        time.sleep(0.02)


def poll_until(url: str, status_field: str, final: set[str], headers: dict[str, str]) -> dict[str, Any]:
    """Poll as the vendor's own client does, until a final status."""
    body: dict[str, Any] = {}

    def finished() -> bool:
        nonlocal body
        polled = httpx.get(url, headers=headers)
        assert polled.status_code == 200, polled.text
        body = polled.json()
        return body[status_field] in final

    wait_for(finished, f"{url} reached one of {final}")
    return body


def creates_on(sim: Any) -> list[Any]:
    return [request for request in sim.requests if request.method == "POST"]


RUNFLOW_CREATE = "^/v1/models/"
EACHLABS_CREATE = "^/v1/prediction/?$"


def test_runflow_door_answers_at_once_then_polls_to_done_served_by_eachlabs(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    server, runflow_sim, eachlabs_sim = door_gateway(simulator, gateway, "runflow", "eachlabs")
    eachlabs_sim.inject(Fault("hold", method="POST", path=EACHLABS_CREATE))  # the serving vendor is slow
    body = documented_request("runflow")
    body["input"] = small(body["input"])
    body["client_ref"] = "order-17"
    base = f"{server.base_url}/vendors/runflow/v1"

    created = httpx.post(f"{base}/models/bytedance/sd-xl-lightning/runs", json=body, headers=BEARER, timeout=30)

    assert created.status_code == 200, created.text
    dispatched = created.json()
    assert set(dispatched) == {"id", "status_code", "model", "created_at"}  # runflow-js RunDispatched
    assert dispatched["status_code"] == "queued" and dispatched["model"] == "bytedance/sd-xl-lightning"
    assert "x-boltgate-cost-usd" not in created.headers  # nothing is charged before the image exists
    run_url = f"{base}/runs/{dispatched['id']}"
    wait_for(lambda: len(creates_on(eachlabs_sim)) == 1, "the serving vendor got the request")
    running = httpx.get(run_url, headers=BEARER).json()
    assert running["status_code"] == "running" and running["output"] is None  # the vendor still holds it
    held = usage(server.base_url, BEARER)
    assert Decimal(held["spent_usd"]) == 0 and Decimal(held["reserved_usd"]) > 0  # held at create, not charged
    others = httpx.get(run_url, headers={"Authorization": "Bearer bg-other"})
    assert others.status_code == 404 and others.json()["code"] == "RUN_NOT_FOUND"

    eachlabs_sim.release_held()
    run = poll_until(run_url, "status_code", {"succeeded", "failed", "canceled"}, BEARER)

    assert run["status_code"] == "succeeded" and run["id"] == dispatched["id"], run
    assert runflow_sim.requests == []
    assert run["input"] == body["input"] and run["client_ref"] == "order-17"
    assert isinstance(run["duration_ms"], int) and run["completed_at"] is not None
    charged = Decimal(run["cost"])
    assert charged > 0 and spent(server.base_url, BEARER) == charged
    (url,) = run["output"]["image_urls"]
    assert url.startswith(f"{server.base_url}/v1/images/files/")
    image = image_at(url)
    assert image.format == "JPEG" and image.size == (256, 256)  # Runflow hands out JPEG
    again = httpx.get(run_url, headers=BEARER)
    assert again.json() == run and again.headers["x-boltgate-backend"] == "eachlabs"  # free, stable
    assert spent(server.base_url, BEARER) == charged and Decimal(usage(server.base_url, BEARER)["reserved_usd"]) == 0
    assert len(creates_on(eachlabs_sim)) == 1  # served once


def test_a_failed_run_polls_as_runflows_failure_and_charges_nothing(simulator: StartSimulator,
                                                                    gateway: StartGateway) -> None:
    server, _, eachlabs_sim = door_gateway(simulator, gateway, "runflow", "eachlabs")
    eachlabs_sim.inject(Fault("status", status=400, method="POST", path=EACHLABS_CREATE, times=None))
    base = f"{server.base_url}/vendors/runflow/v1"
    created = httpx.post(f"{base}/models/bytedance/sd-xl-lightning/runs", headers=BEARER,
                         json={"input": {"prompt": "a kite", "width": 256, "height": 256}})

    run = poll_until(f"{base}/runs/{created.json()['id']}", "status_code", {"succeeded", "failed", "canceled"},
                     BEARER)

    assert run["status_code"] == "failed" and run["output"] is None, run
    assert run["failure_code"] == "no_backend_available" and run["failure_message"]
    assert Decimal(run["cost"]) == 0 and spent(server.base_url, BEARER) == 0
    wait_for(lambda: Decimal(usage(server.base_url, BEARER)["reserved_usd"]) == 0, "the hold was released")


def test_a_failed_prediction_polls_as_eachlabs_error_and_charges_nothing(simulator: StartSimulator,
                                                                         gateway: StartGateway) -> None:
    server, _, runflow_sim = door_gateway(simulator, gateway, "eachlabs", "runflow")
    runflow_sim.inject(Fault("status", status=400, method="POST", path=RUNFLOW_CREATE, times=None))
    base = f"{server.base_url}/vendors/eachlabs/v1/prediction"
    created = httpx.post(f"{base}/", headers=BEARER, json={"model": "sdxl-lightning-4step",
                                                          "input": {"prompt": "a kite", "width": "256",
                                                                    "height": "256"}})

    prediction = poll_until(f"{base}/{created.json()['predictionID']}", "status", {"success", "error", "cancelled"},
                            BEARER)

    assert prediction["status"] == "error", prediction  # as their docs report a failed prediction
    assert prediction["output"]["error_code"] == "no_backend_available" and prediction["output"]["error_message"]
    assert prediction["metrics"]["cost"] == 0 and spent(server.base_url, BEARER) == 0


def test_runflow_door_refuses_in_runflows_shape(simulator: StartSimulator, gateway: StartGateway) -> None:
    server, _, eachlabs_sim = door_gateway(simulator, gateway, "runflow", "eachlabs")
    runs = f"{server.base_url}/vendors/runflow/v1/models/bytedance/sd-xl-lightning/runs"
    good = {"input": {"prompt": "a lighthouse", "width": 256, "height": 256}}

    bad_steps = httpx.post(runs, json={"input": {**good["input"], "steps": 100}}, headers=BEARER)
    typo = httpx.post(runs, json={"input": {**good["input"], "stpes": 4}}, headers=BEARER)
    callback = httpx.post(runs, json={**good, "callback_url": "https://example.com/hook"}, headers=BEARER)
    not_json = httpx.post(runs, content=b"{", headers={**BEARER, "content-type": "application/json"})
    no_key = httpx.post(runs, json=good)
    other_model = httpx.post(runs.replace("bytedance/sd-xl-lightning", "acme/flux"), json=good, headers=BEARER)

    assert bad_steps.status_code == 422
    assert bad_steps.json()["code"] == "VALIDATION_ERROR"
    assert bad_steps.json()["errors"][0]["field"] == "input.steps"
    assert typo.status_code == 422 and typo.json()["errors"][0]["field"] == "input.stpes"
    assert callback.status_code == 422 and callback.json()["errors"][0]["field"] == "callback_url"
    assert not_json.status_code == 422 and set(not_json.json()) == {"code", "message", "errors"}
    assert no_key.status_code == 401 and no_key.json()["code"] == "UNAUTHORIZED"
    assert other_model.status_code == 404 and other_model.json()["code"] == "MODEL_NOT_FOUND"
    missing = httpx.get(f"{server.base_url}/vendors/runflow/v1/runs/run_nope", headers=BEARER)
    assert missing.status_code == 404 and missing.json()["code"] == "RUN_NOT_FOUND"
    assert eachlabs_sim.requests == []
    assert spent(server.base_url, BEARER) == 0


def test_eachlabs_door_answers_at_once_then_polls_to_done_served_by_runflow(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    server, eachlabs_sim, runflow_sim = door_gateway(simulator, gateway, "eachlabs", "runflow")
    runflow_sim.inject(Fault("hold", method="POST", path=RUNFLOW_CREATE))
    body = documented_request("eachlabs")
    body["input"] = small(body["input"])
    api_key = {"X-API-Key": "bg-door"}  # the header of Eachlabs' older examples; Bearer works too
    base = f"{server.base_url}/vendors/eachlabs/v1/prediction"

    created = httpx.post(f"{base}/", json=body, headers=api_key, timeout=30)

    assert created.status_code == 200, created.text
    answer = created.json()
    assert answer == {"status": "success", "message": "Prediction created successfully",
                      "predictionID": answer["predictionID"]}  # their Create Prediction answer
    prediction_url = f"{base}/{answer['predictionID']}"
    wait_for(lambda: len(creates_on(runflow_sim)) == 1, "the serving vendor got the request")
    pending = httpx.get(prediction_url, headers=BEARER).json()
    assert pending["status"] == "processing" and pending["output"] is None
    assert spent(server.base_url, BEARER) == 0
    others = httpx.get(prediction_url, headers={"Authorization": "Bearer bg-other"})
    assert others.status_code == 404 and others.json() == {"error": f"Prediction {answer['predictionID']} not found"}

    runflow_sim.release_held()
    prediction = poll_until(prediction_url, "status", {"success", "error", "cancelled"}, BEARER)

    assert set(prediction) == {"id", "input", "status", "output", "logs", "metrics", "urls"}
    assert prediction["status"] == "success" and prediction["input"] == body["input"], prediction
    assert eachlabs_sim.requests == []
    charged = Decimal(str(prediction["metrics"]["cost"]))
    assert charged > 0 and spent(server.base_url, BEARER) == charged
    assert isinstance(prediction["metrics"]["predict_time"], float)
    image = image_at(prediction["output"])
    assert image.format == "PNG" and image.size == (256, 256)  # Eachlabs hands out PNG
    assert prediction["urls"]["get"] == prediction_url
    assert httpx.get(prediction_url, headers=BEARER).headers["x-boltgate-backend"] == "runflow"
    cancel = httpx.post(prediction["urls"]["cancel"], headers=BEARER)
    assert cancel.status_code == 409 and cancel.json() == {"error": "Prediction already finished"}
    assert spent(server.base_url, BEARER) == charged


def test_eachlabs_door_cancels_a_running_prediction_without_a_charge(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    server, _, runflow_sim = door_gateway(simulator, gateway, "eachlabs", "runflow")
    runflow_sim.inject(Fault("hold", method="POST", path=RUNFLOW_CREATE))
    body = {"model": "sdxl-lightning-4step", "input": {"prompt": "a kite", "width": "256", "height": "256"}}
    base = f"{server.base_url}/vendors/eachlabs/v1/prediction"
    prediction_id = httpx.post(f"{base}/", json=body, headers=BEARER, timeout=30).json()["predictionID"]
    wait_for(lambda: len(creates_on(runflow_sim)) == 1, "the serving vendor got the request")

    others = httpx.post(f"{base}/{prediction_id}/cancel", headers={"Authorization": "Bearer bg-other"})
    cancel = httpx.post(f"{base}/{prediction_id}/cancel", headers=BEARER)

    assert others.status_code == 404
    assert cancel.status_code == 200 and cancel.json() == {"status": "success",
                                                           "message": "Prediction canceled successfully"}
    runflow_sim.release_held()  # the vendor answers after all: too late, nothing is charged
    cancelled = httpx.get(f"{base}/{prediction_id}", headers=BEARER).json()
    assert cancelled["status"] == "cancelled" and cancelled["output"] is None
    wait_for(lambda: Decimal(usage(server.base_url, BEARER)["reserved_usd"]) == 0, "the hold was released")
    assert spent(server.base_url, BEARER) == 0


def test_eachlabs_door_refuses_in_eachlabs_shape(simulator: StartSimulator, gateway: StartGateway) -> None:
    server, _, runflow_sim = door_gateway(simulator, gateway, "eachlabs", "runflow")
    url = f"{server.base_url}/vendors/eachlabs/v1/prediction/"
    body = small(documented_request("eachlabs")["input"])

    no_model = httpx.post(url, json={"version": "0.0.1", "input": body}, headers=BEARER)
    bad_width = httpx.post(url, json={"model": "sdxl-lightning-4step", "input": {**body, "width": "wide"}},
                           headers=BEARER)
    scheduler = httpx.post(url, json={"model": "sdxl-lightning-4step", "input": {**body, "scheduler": "DDIM"}},
                           headers=BEARER)
    webhook = httpx.post(url, json={"model": "sdxl-lightning-4step", "input": body,
                                    "webhook_url": "https://example.com"}, headers=BEARER)
    wrong_key = httpx.post(url, json={"model": "sdxl-lightning-4step", "input": body}, headers={"X-API-Key": "nope"})

    assert no_model.status_code == 400 and no_model.json() == {"error": "model field is required"}
    assert bad_width.status_code == 400 and "input.width" in bad_width.json()["error"]
    assert scheduler.status_code == 400 and "input.scheduler" in scheduler.json()["error"]
    assert webhook.status_code == 400 and "webhook_url" in webhook.json()["error"]
    assert wrong_key.status_code == 401 and set(wrong_key.json()) == {"error"}
    assert runflow_sim.requests == []


def test_imageapi_door_generates_served_by_callmissed(simulator: StartSimulator, gateway: StartGateway) -> None:
    server, imageapi_sim, callmissed_sim = door_gateway(simulator, gateway, "imageapi", "callmissed")
    body = small(documented_request("imageapi"))
    url = f"{server.base_url}/vendors/imageapi/api/v1/generate"

    answer = httpx.post(url, json=body, headers=BEARER, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.headers["x-boltgate-backend"] == "callmissed"
    assert imageapi_sim.requests == [] and len(callmissed_sim.requests) == 1
    (item,) = answer.json()["data"]
    image = image_at(item["url"])
    assert image.format == "PNG" and image.size == (256, 256)
    assert spent(server.base_url, BEARER) == Decimal(answer.headers["x-boltgate-cost-usd"]) > 0

    bad = httpx.post(url, json={**body, "num_inference_steps": 0}, headers=BEARER)
    unknown = httpx.post(url, json={**body, "style": "photo"}, headers=BEARER)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    assert "num_inference_steps" in bad.json()["error"]["message"]
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_parameter"
    assert len(callmissed_sim.requests) == 1


def test_a_door_replays_an_idempotency_key_without_a_second_charge(
    simulator: StartSimulator, gateway: StartGateway
) -> None:
    server, _, callmissed_sim = door_gateway(simulator, gateway, "imageapi", "callmissed")
    url = f"{server.base_url}/vendors/imageapi/api/v1/generate"
    body = {"prompt": "a kite", "width": 256, "height": 256}
    headers = {**BEARER, "Idempotency-Key": "kite-1"}

    first = httpx.post(url, json=body, headers=headers, timeout=30)
    second = httpx.post(url, json=body, headers=headers, timeout=30)

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and second.headers["x-boltgate-idempotent-replay"] == "true"
    assert len(callmissed_sim.requests) == 1
    assert spent(server.base_url, BEARER) == Decimal(first.headers["x-boltgate-cost-usd"])
