"""Eachlabs: predictions (create, then poll ``/v1/prediction/{id}``), billed per second of run time.

Their API takes every input value as a string, so this adapter sends strings only. The
image-to-image field names are unconfirmed, hence the ``image_field`` and ``strength_field``
options.
"""

from __future__ import annotations

import base64
from typing import Any

from backends.base import Capabilities, sniff_format
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, nsfw_flagged, reported_usd, require
from backends.vendors.spec import JobProtocol, JobState, Options, VendorSpec
from core.errors import VendorProtocolError
from core.request import ImageRequest

PENDING = frozenset({"starting", "processing"})
FAILED = frozenset({"failed", "cancelled", "canceled"})
MIN_STRENGTH, MAX_STRENGTH = 0.3, 0.8
"""The strength range their page documents for image-to-image."""


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


def cancel(prediction_id: str, latest: HttpAnswer, options: Options) -> HttpCall:
    """The absolute ``urls.cancel`` from the latest answer when it has one, else the usual path."""
    try:
        urls = latest.json().get("urls")
    except (VendorProtocolError, AttributeError):
        urls = None
    url = urls.get("cancel") if isinstance(urls, dict) else None
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return HttpCall("POST", url)
    return HttpCall("POST", f"/v1/prediction/{prediction_id}/cancel")


def read_state(answer: HttpAnswer) -> JobState:
    prediction = answer.json()
    status = require(prediction, "status", str, "eachlabs prediction")
    metrics = prediction.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    seconds = _seconds(metrics.get("predict_time"))
    cost = reported_usd(metrics.get("cost"), "eachlabs metrics.cost")
    error = prediction.get("error")
    if status in FAILED or error:
        return JobState(
            "failed",
            failure_code=status,
            failure_message=str(error or "")[:300],
            billed=bool(seconds),
            run_seconds=seconds,
            vendor_cost_usd=cost,
        )
    if status in PENDING:
        return JobState("pending")
    if status == "success":
        output = VendorOutput(
            image_urls=_output_urls(prediction.get("output")),
            run_seconds=seconds,
            vendor_cost_usd=cost,
            flagged_nsfw=nsfw_flagged(prediction),
        )
        return JobState("succeeded", output=output)
    raise VendorProtocolError(f"eachlabs prediction has an unknown status '{status[:50]}'")


def error_fields(body: Any) -> tuple[str | None, str]:
    """Their errors are ``{"error": "text"}``; there is no code."""
    error = body.get("error") if isinstance(body, dict) else None
    return None, str(error if error is not None else body)[:300]


def _output_urls(output: Any) -> list[str]:
    """``output`` is one URL or a list of URLs; both are documented."""
    urls = [output] if isinstance(output, str) else output
    if (
        not isinstance(urls, list)
        or not urls
        or not all(isinstance(url, str) and url.startswith(("https://", "http://")) for url in urls)
    ):
        raise VendorProtocolError(f"eachlabs output is neither a URL nor a list of URLs: {str(output)[:200]}")
    return urls


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _number(value: float) -> str:
    """``0.0`` as ``"0"``, ``7.5`` as ``"7.5"``: the way their examples write numbers."""
    return format(value, "g")


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
    job=JobProtocol(job_id=job_id, poll=poll, read_state=read_state, cancel=cancel),
    auth_header="X-API-Key",
    auth_prefix="",
    default_options={
        "model": "sdxl-lightning-4step",
        "version": "0.0.1",
        "image_field": "image",
        "strength_field": "strength",
    },
)
