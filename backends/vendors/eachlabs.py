"""Eachlabs: predictions (create, then poll ``/v1/prediction/{id}``), billed per second of run time.

Their model page sends every input value as a string, so this adapter sends strings only. A
failed prediction polls as ``status: "error"`` with the reason in ``output.error_code`` /
``output.error_message``; ``metrics.cost`` says what it billed. The image-to-image field names
are unconfirmed, hence the ``image_field`` and ``strength_field`` options. What the docs confirm
and what is assumed is listed once, in ``BEHAVIOURS``.

Their docs show no idempotency key and no way to find one's own prediction without its id (their
execution listing has no client-chosen id to match): a create whose answer was lost (a timeout, a
reset) may be a running, billed prediction we can never poll, so it is not sent again to the
account; the router fails over. A cancel is best-effort ("the original prediction may still
complete or fail"), so an abandoned prediction counts as unbilled only when, read after its
cancel, it polls as ended at no cost (``polling``). Their documented 500
("Failed to create prediction") is an HTTP error, which they say prevents a request from being
accepted, so it is retried.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from backends.base import Capabilities, sniff_format
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, nsfw_flagged, reported_usd, require
from backends.vendors.spec import Behaviour, JobProtocol, JobState, Options, VendorFacts, VendorSpec
from core.errors import UnusableOutput, VendorProtocolError
from core.request import ImageRequest

PENDING = frozenset({"created", "starting", "processing"})
FAILED = frozenset({"error", "cancelled", "canceled", "failed"})
CONTENT_CODES = frozenset({"CONTENT_MODERATION", "CONTENT_FILTER"})
"""Error codes of a safety refusal (assumed: their error classification ``content_moderation``
and each::sense's ``CONTENT_FILTER``; no prediction example shows one)."""
MIN_STRENGTH, MAX_STRENGTH = 0.3, 0.8
"""The strength range their page documents for image-to-image."""

DOCS = "docs.eachlabs.ai (repository eachlabs/mintlify-docs)"
OPENAPI = "eachlabs/mintlify-docs openapi_specs/models.json"
MODEL_PAGE = "eachlabs.ai/ai-models/sdxl-lightning-4step/api"


def build_request(request: ImageRequest, options: Options) -> HttpCall:
    fields: dict[str, str] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or "",
        "width": str(request.width),
        "height": str(request.height),
        "num_outputs": str(request.n),
        "num_inference_steps": str(request.steps),
        "guidance_scale": _number(request.guidance_scale),
        "scheduler": "K_EULER",
        "seed": str(request.seed),
        "disable_safety_checker": "true",
    }
    if request.init_image is not None:
        fields[options["image_field"]] = data_uri(request.init_image)
        strength = min(max(request.strength, MIN_STRENGTH), MAX_STRENGTH)
        fields[options["strength_field"]] = _number(strength)
    body = {"model": options["model"], "version": options["version"], "input": fields}
    return HttpCall("POST", "/v1/prediction/", body)


def data_uri(image: bytes) -> str:
    mime = f"image/{sniff_format(image[:16]) or 'png'}"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def job_id(answer: HttpAnswer) -> str:
    """Their create answers ``status: "success"`` (accepted) and a ``predictionID``."""
    body = answer.json()
    if not isinstance(body, dict) or body.get("status") != "success":
        raise VendorProtocolError(f"eachlabs did not accept the prediction: {str(body)[:200]}")
    return str(require(body, "predictionID", str, "eachlabs prediction"))


def poll(prediction_id: str, options: Options) -> HttpCall:
    return HttpCall("GET", f"/v1/prediction/{prediction_id}")


def cancel(prediction_id: str, options: Options) -> HttpCall:
    """Always on the route's own host: the ``urls.cancel`` an answer names is never followed."""
    return HttpCall("POST", f"/v1/prediction/{prediction_id}/cancel")


def read_state(answer: HttpAnswer) -> JobState:
    prediction = answer.json()
    status = require(prediction, "status", str, "eachlabs prediction")
    metrics = prediction.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    seconds = _seconds(metrics.get("predict_time"))
    cost = reported_usd(metrics.get("cost"), "eachlabs metrics.cost")
    if status in PENDING:
        return JobState("pending")
    if status in FAILED:
        code, message = _failure(prediction.get("output"), status)
        return JobState(
            "failed",
            failure_code=code,
            failure_message=message,
            billed=_billed(cost, seconds),
            run_seconds=seconds,
            vendor_cost_usd=cost,
            content_filtered=code.upper() in CONTENT_CODES,
        )
    if status == "success":
        output = VendorOutput(
            image_urls=_output_urls(prediction.get("output"), seconds, cost),
            run_seconds=seconds,
            vendor_cost_usd=cost,
            flagged_nsfw=nsfw_flagged(prediction),
        )
        return JobState("succeeded", output=output)
    raise VendorProtocolError(f"eachlabs prediction has an unknown status '{status[:50]}'")


def error_fields(body: Any) -> tuple[str | None, str]:
    """Their errors are ``{"error": "text"}`` (402 and 429 add ``details``); there is no code."""
    if not isinstance(body, dict):
        return None, str(body)[:300]
    error = body.get("error")
    details = body.get("details")
    message = str(error if error is not None else body)
    if isinstance(details, str) and details:
        message = f"{message}: {details}"
    return None, message[:300]


def _failure(output: Any, status: str) -> tuple[str, str]:
    """(error_code, error_message) from the error envelope in ``output``, else the status."""
    if not isinstance(output, dict):
        return status, ""
    code = output.get("error_code")
    message = output.get("error_message") or output.get("error") or ""
    return (code if isinstance(code, str) and code else status), str(message)[:300]


def _billed(cost: Decimal | None, seconds: float | None) -> bool:
    """``metrics.cost`` is what the prediction billed; without it, a run that took time (assumed)."""
    if cost is not None:
        return cost > 0
    return bool(seconds)


def _output_urls(output: Any, seconds: float | None, cost: Decimal | None) -> list[str]:
    """``output`` is one URL or a list of URLs; both are documented. Anything else, on a
    prediction that succeeded (and was billed), is output we cannot use."""
    urls = [output] if isinstance(output, str) else output
    if (
        not isinstance(urls, list)
        or not urls
        or not all(isinstance(url, str) and url.startswith(("https://", "http://")) for url in urls)
    ):
        raise UnusableOutput(f"eachlabs output is neither a URL nor a list of URLs: {str(output)[:200]}",
                             run_seconds=seconds, vendor_cost_usd=cost)
    return urls


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _number(value: float) -> str:
    """``0.0`` as ``"0"``, ``7.5`` as ``"7.5"``: the way their examples write numbers."""
    return format(value, "g")


BEHAVIOURS = (
    Behaviour("auth: Authorization: Bearer <key> (X-API-Key kept as the auth_scheme option)",
              f"{DOCS}: Authentication > API Key Authentication; Changelog, July 27 2026"),
    Behaviour("create: POST /v1/prediction/ {model, version, input} answers "
              "{status: success, message, predictionID}",
              f"{DOCS}: Create Prediction > Request Body, Response"),
    Behaviour("input values as strings: prompt, negative_prompt, width, height, num_outputs, "
              "num_inference_steps, guidance_scale, scheduler, seed, disable_safety_checker",
              f"{MODEL_PAGE}: 1. Create a Prediction"),
    Behaviour("limits: sides 256-1280, num_outputs 1-4, num_inference_steps 1-10",
              "replicate.com/bytedance/sdxl-lightning-4step: Input schema (the upstream model)"),
    Behaviour("statuses created, starting, processing, success, error, cancelled",
              f"{DOCS}: Get Prediction > Prediction Status Values"),
    Behaviour("a failure polls as status error with output.error_code / error_message",
              f"{DOCS}: Error Reference > Prediction-Envelope Errors; Video API > Error catalog"),
    Behaviour("metrics.cost is what a prediction billed; metrics.predict_time its run time",
              f"{DOCS}: Get Prediction > Response Fields; Video API > Error catalog"),
    Behaviour("output is a URL or a list of URLs", f"{DOCS}: Get Prediction > Response Fields"),
    Behaviour("cancel: POST /v1/prediction/{id}/cancel; a prediction that polls cancelled never bills",
              f"{DOCS}: Video API > Cancelling a prediction; {OPENAPI}: cancelPrediction"),
    Behaviour("a cancel is best-effort: after its 200 the prediction may still complete or fail, so it "
              "is read once more and counts as unbilled only if it ended at no cost",
              f"{OPENAPI}: paths./v1/prediction/{{id}}/cancel (cancelPrediction description)"),
    Behaviour("statuses starting, processing, success, failed, cancelled (the schema's enum)",
              f"{OPENAPI}: components.schemas.Prediction.status"),
    Behaviour("errors {error}; 402 and 429 add {status, details}; 429 is a concurrency cap",
              f"{DOCS}: Error Reference > HTTP Status Codes, Common Errors"),
    Behaviour("poll every 1 s", f"{MODEL_PAGE}: 2. Get Prediction Result"),
    Behaviour("create takes model, version, input, fallback_selector, webhook_url, webhook_secret: no "
              "idempotency key or client-chosen id", f"{DOCS}: Create Prediction > Request Body"),
    Behaviour("no way to find one's own prediction without its id: GET /v1/executions lists the whole "
              "organization's executions by model, status and time, with no client-chosen id to match",
              f"{OPENAPI}: paths./v1/executions (listExecutions); {DOCS}: Changelog, August 19 2026"),
    Behaviour("errors that prevent a request from being accepted use the HTTP error format; the create's "
              "500 is 'Failed to create prediction'; their retry example resends on 429 and 500",
              f"{DOCS}: Error Reference > Prediction Errors, Retry Strategy; Create Prediction > Error Responses"),
    Behaviour("a failed prediction without metrics.cost was billed if it ran (predict_time > 0)"),
    Behaviour("a safety refusal carries error_code CONTENT_MODERATION or CONTENT_FILTER"),
    Behaviour("image-to-image takes 'image' (data URI) and 'strength' 0.3-0.8 (options image_field, "
              "strength_field)"),
)

EACHLABS = VendorSpec(
    name="eachlabs",
    capabilities=Capabilities(
        max_steps=10,
        min_side=256,
        max_side=1280,
        max_n=4,
        image_to_image=True,
        output_formats=frozenset({"png"}),
    ),
    build_request=build_request,
    error_fields=error_fields,
    facts=VendorFacts(default_base_url="https://api.eachlabs.ai", key_env="EACHLABS_API_KEY",
                      price_key="eachlabs", demo_priority=30),
    job=JobProtocol(job_id=job_id, poll=poll, read_state=read_state, cancel=cancel, poll_interval_s=1.0,
                    cancel_stops_billing=True),
    auth_scheme="bearer",
    create_not_started=frozenset({500}),
    default_options={
        "model": "sdxl-lightning-4step",
        "version": "0.0.1",
        "image_field": "image",
        "strength_field": "strength",
    },
    behaviours=BEHAVIOURS,
)
