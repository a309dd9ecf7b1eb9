"""Runflow: asynchronous runs (create, then poll ``/v1/runs/{id}``); JPEG output via short-lived URLs.

One image per run, so ``max_n=1``: the router skips Runflow for ``n > 1`` rather than this
adapter starting several runs that could half-succeed and half-bill. The model path is an option
(``model_path``) because the documented path is unconfirmed.
"""

from __future__ import annotations

from typing import Any

from backends.base import Capabilities
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, nsfw_flagged, reported_usd, require
from backends.vendors.spec import JobProtocol, JobState, Options, VendorSpec
from core.errors import VendorProtocolError
from core.request import ImageRequest

PENDING = frozenset({"queued", "dispatching", "running"})
FAILED = frozenset({"failed", "canceled", "cancelled"})


def build_request(request: ImageRequest, options: Options) -> HttpCall:
    fields: dict[str, Any] = {
        "prompt": request.prompt,
        "seed": request.seed,
        "width": request.width,
        "height": request.height,
        "guidance": request.guidance_scale,
        "steps": request.steps,
    }
    if request.negative_prompt:
        fields["negative_prompt"] = request.negative_prompt
    return HttpCall("POST", f"/v1/models/{options['model_path'].strip('/')}/runs", {"input": fields})


def job_id(answer: HttpAnswer) -> str:
    return str(require(answer.json(), "id", str, "runflow run"))


def poll(run_id: str, options: Options) -> HttpCall:
    return HttpCall("GET", f"/v1/runs/{run_id}")


def cancel(run_id: str, latest: HttpAnswer, options: Options) -> HttpCall:
    return HttpCall("POST", f"/v1/runs/{run_id}/cancel")


def read_state(answer: HttpAnswer) -> JobState:
    run = answer.json()
    status = require(run, "status_code", str, "runflow run")
    if status in PENDING:
        return JobState("pending")
    urls = _image_urls(run.get("output"))
    cost = reported_usd(run.get("cost"), "runflow cost")
    seconds = _seconds(run.get("duration_ms"))
    if status == "succeeded" or (status == "partial_succeeded" and urls):
        if not urls:
            raise VendorProtocolError(f"runflow run succeeded without image_urls: {str(run)[:200]}")
        output = VendorOutput(
            image_urls=urls,
            run_seconds=seconds,
            vendor_cost_usd=cost,
            flagged_nsfw=nsfw_flagged(run.get("output")) or nsfw_flagged(run),
        )
        return JobState("succeeded", output=output)
    if status in FAILED or status == "partial_succeeded":
        return JobState(
            "failed",
            failure_code=_text(run.get("failure_code")) or status,
            failure_message=_text(run.get("failure_message")) or "",
            billed=bool(cost),
            run_seconds=seconds,
            vendor_cost_usd=cost,
        )
    raise VendorProtocolError(f"runflow run has an unknown status_code '{status[:50]}'")


def error_fields(body: Any) -> tuple[str | None, str]:
    """``{"code", "message", "errors"}``; the 422 ``errors[]`` detail joins the message."""
    if not isinstance(body, dict):
        return None, str(body)[:300]
    message = _text(body.get("message")) or ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        message = f"{message} {'; '.join(str(item) for item in errors)[:300]}".strip()
    return _text(body.get("code")), message


def _image_urls(output: Any) -> list[str]:
    urls = output.get("image_urls") if isinstance(output, dict) else None
    if urls is None:
        return []
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise VendorProtocolError(f"runflow image_urls is not a list of URLs: {str(urls)[:200]}")
    return urls


def _seconds(duration_ms: Any) -> float | None:
    if isinstance(duration_ms, int | float) and not isinstance(duration_ms, bool):
        return duration_ms / 1000
    return None


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


RUNFLOW = VendorSpec(
    name="runflow",
    capabilities=Capabilities(max_steps=12, min_side=256, max_side=1536, max_n=1, output_formats=frozenset({"jpeg"})),
    build_request=build_request,
    error_fields=error_fields,
    job=JobProtocol(job_id=job_id, poll=poll, read_state=read_state, cancel=cancel),
    default_options={"model_path": "bytedance/sd-xl-lightning"},
)
