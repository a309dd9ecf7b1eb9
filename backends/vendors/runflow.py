"""Runflow: asynchronous runs (create, then poll ``/v1/runs/{id}``); JPEG output via short-lived URLs.

One image per run, so ``max_n=1``: the router skips Runflow for ``n > 1`` rather than this
adapter starting several runs that could half-succeed and half-bill. Runflow publishes no cancel
(its only cancel is an admin action that neither stops nor refunds a run), so a run this
gateway stops waiting for runs on and is paid for: it is booked as the gateway's loss. The model
path is an option (``model_path``) because the documented path is unconfirmed.

"Mutations are not idempotent by default", their docs say, and no idempotency key is documented:
a create whose answer was lost (a timeout, a reset, a 5xx) may be a queued, billed run, so it is
not sent again (their advice to retry 5xx and network errors is not followed for creates).
Instead each create carries the request's key as ``client_ref``, and after a lost answer the run
is searched for (``GET /v1/runs?q=client_ref:...``): found, it is polled like any run; not found
(or the search fails), the router fails over. Their 429 and 409 are refusals, retried as advised.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backends.base import Capabilities
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, nsfw_flagged, reported_usd, require
from backends.vendors.spec import Behaviour, JobProtocol, JobState, Options, VendorFacts, VendorSpec
from core.errors import UnusableOutput, VendorProtocolError
from core.request import ImageRequest

PENDING = frozenset({"queued", "dispatching", "running"})
FAILED = frozenset({"failed", "canceled", "cancelled", "errored"})

DOCS = "docs.runflow.io"
SDK = "runflow-io/runflow-js packages/sdk/src"
MODEL_PAGE = "runflow.io/models/bytedance/sd-xl-lightning"


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


def find(client_ref: str, options: Options) -> HttpCall:
    """Search runs for ours (``q`` filters a list; that it matches ``client_ref`` is assumed, and
    ``found`` checks every answer's ``client_ref`` itself)."""
    return HttpCall("GET", f"/v1/runs?q=client_ref:{client_ref}&limit=5")


def found(answer: HttpAnswer, client_ref: str) -> str | None:
    """The id of a run in the search answer whose ``client_ref`` is ours, else None."""
    body = answer.json()
    items = body.get("items") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("client_ref") == client_ref and isinstance(item.get("id"), str):
            return str(item["id"])
    return None


def poll(run_id: str, options: Options) -> HttpCall:
    query = "?add_signature=true" if options.get("add_signature") == "true" else ""
    return HttpCall("GET", f"/v1/runs/{run_id}{query}")


def read_state(answer: HttpAnswer) -> JobState:
    run = answer.json()
    key = "status" if isinstance(run, dict) and "status_code" not in run else "status_code"
    status = require(run, key, str, "runflow run")  # their Errors page example writes "status"
    if status in PENDING:
        return JobState("pending")
    cost = reported_usd(run.get("cost"), "runflow cost")
    seconds = _seconds(run.get("duration_ms"))
    if status == "succeeded" or (status == "partial_succeeded" and _has_images(run.get("output"))):
        output = VendorOutput(
            image_urls=image_urls(run.get("output"), seconds, cost),
            run_seconds=seconds,
            vendor_cost_usd=cost,
            flagged_nsfw=nsfw_flagged(run.get("output")) or nsfw_flagged(run),
        )
        return JobState("succeeded", output=output)
    if status in FAILED or status == "partial_succeeded":
        error = run.get("error") if isinstance(run.get("error"), dict) else {}
        return JobState(
            "failed",
            failure_code=_text(run.get("failure_code")) or _text(error.get("code")) or status,
            failure_message=_text(run.get("failure_message")) or _text(error.get("message")) or "",
            billed=cost > 0 if cost is not None else True,
            run_seconds=seconds,
            vendor_cost_usd=cost,
        )
    raise VendorProtocolError(f"runflow run has an unknown status_code '{status[:50]}'")


def image_urls(output: Any, seconds: float | None = None, cost: Decimal | None = None) -> list[str]:
    """Every image URL of a run's output, in any shape Runflow's SDK reads: ``outputs[].url``,
    ``image_urls[]``, ``image.url``, ``url`` or ``output_url``. Any other shape, on a run that
    succeeded (and was billed), is output we cannot use."""
    urls: list[Any] = []
    if isinstance(output, dict):
        if isinstance(output.get("outputs"), list):
            urls = [item.get("url") if isinstance(item, dict) else None for item in output["outputs"]]
        elif isinstance(output.get("image_urls"), list):
            urls = list(output["image_urls"])
        elif isinstance(output.get("image"), dict):
            urls = [output["image"].get("url")]
        elif isinstance(output.get("url"), str):
            urls = [output["url"]]
        elif isinstance(output.get("output_url"), str):
            urls = [output["output_url"]]
    if not urls or not all(isinstance(url, str) and url.startswith(("https://", "http://")) for url in urls):
        raise UnusableOutput(f"runflow output has no image URL in a known shape: {str(output)[:200]}",
                             run_seconds=seconds, vendor_cost_usd=cost)
    return urls


def _has_images(output: Any) -> bool:
    try:
        return bool(image_urls(output))
    except UnusableOutput:
        return False


def error_fields(body: Any) -> tuple[str | None, str]:
    """``{"code", "message", "errors"}``; the 422 ``errors[]`` detail joins the message."""
    if not isinstance(body, dict):
        return None, str(body)[:300]
    message = _text(body.get("message")) or ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        message = f"{message} {'; '.join(str(item) for item in errors)[:300]}".strip()
    return _text(body.get("code")), message


def _seconds(duration_ms: Any) -> float | None:
    if isinstance(duration_ms, int | float) and not isinstance(duration_ms, bool):
        return duration_ms / 1000
    return None


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


BEHAVIOURS = (
    Behaviour("auth: Authorization: Bearer <key>", f"{DOCS}: Errors > Status codes (401); {SDK}/client.ts"),
    Behaviour("create: POST /v1/models/{owner}/{slug}/runs {input} answers at once {id, status_code}",
              f"{SDK}/client.ts ModelsResource.run, types.ts RunDispatched"),
    Behaviour("input: prompt, negative_prompt, seed, width, height, guidance, steps; steps up to 12; "
              "one JPEG per run", f"{MODEL_PAGE}: Technical specifications"),
    Behaviour("poll GET /v1/runs/{id}: status_code, output, duration_ms, cost (a string), "
              "failure_code, failure_message", f"{DOCS}: API reference > Get run"),
    Behaviour("statuses queued, running, succeeded, failed, canceled", f"{SDK}/types.ts RunStatus"),
    Behaviour("a failed run carries failure_code, failure_stage, failure_message",
              f"{DOCS}: Errors > Run failures"),
    Behaviour("output shapes outputs[].url, image_urls[], image.url, url, output_url",
              f"{SDK}/tools/outputs.ts extractFirstImageUrl"),
    Behaviour("poll every 2 s and keep polling through 5xx", f"{SDK}/client.ts RunsResource.poll"),
    Behaviour("no public cancel; the admin cancel neither stops nor refunds a run",
              f"{DOCS}: Guides > Cancel a run"),
    Behaviour("errors {code, message, errors[]}; 409 'refetch and retry'; retry 5xx and 429, not "
              "other 4xx", f"{DOCS}: Errors > Envelope, Status codes, Retry strategy"),
    Behaviour("429 carries no Retry-After or X-RateLimit-* headers: it is retried with exponential backoff "
              "and jitter; busy capacity shows as a long queued run, not a refusal",
              f"{DOCS}: Concepts > Rate limits (Backoff, Run capacity)"),
    Behaviour("mutations are not idempotent by default; no idempotency key is documented",
              f"{DOCS}: Requests > Idempotency"),
    Behaviour("the official SDK sends a create once and never retries it (it retries only polls on 5xx)",
              f"{SDK}/client.ts ModelsResource.run, RunsResource.poll"),
    Behaviour("a create takes client_ref and runs carry it; GET /v1/runs searches runs, {items: [...]}, "
              "filtered by q (field:value)", f"{DOCS}: API reference > Create and dispatch a singleton model "
              "run, Search runs; Requests > Filtering"),
    Behaviour("q can filter on client_ref (every answer's client_ref is checked, so a search that ignores "
              "the filter finds nothing)"),
    Behaviour("statuses dispatching and partial_succeeded, and the spellings cancelled and errored",
              "vendors.md > Runflow (docs.runflow.io concepts/runs); runflow-io/runflow-ad-creative "
              "skills/runflow-ad-creative/tools/create_ad.py TERMINAL"),
    Behaviour("a partial_succeeded run whose output holds images is a success (one image per run)"),
    Behaviour("the model path is bytedance/sd-xl-lightning (option model_path)"),
    Behaviour("a failed run without a cost was billed"),
    Behaviour("sides 256-1536 (not published)"),
)

RUNFLOW = VendorSpec(
    name="runflow",
    capabilities=Capabilities(max_steps=12, min_side=256, max_side=1536, max_n=1, output_formats=frozenset({"jpeg"})),
    build_request=build_request,
    error_fields=error_fields,
    facts=VendorFacts(default_base_url="https://api.runflow.io", key_env="RUNFLOW_API_KEY",
                      price_key="runflow", demo_priority=20),
    job=JobProtocol(job_id=job_id, poll=poll, read_state=read_state, cancel=None, poll_interval_s=2.0,
                    client_ref_field="client_ref", find=find, found=found),
    default_options={"model_path": "bytedance/sd-xl-lightning"},
    extra_options=frozenset({"add_signature"}),
    retry_statuses=frozenset({409}),
    behaviours=BEHAVIOURS,
)
