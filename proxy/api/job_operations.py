"""The OpenAPI documentation of the async job endpoints and the webhook secret: the job body
(the generation body narrowed to what the deployment's routes serve, answered as URLs, plus
``webhook_url``), the job as answered, and every error status, in OpenAI's envelope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from litestar.openapi.spec import Link, OpenAPIMediaType, OpenAPIType, Operation, Parameter, RequestBody, Schema
from pydantic import ConfigDict, Field

from proxy.api.image_operations import PARAMETERS, route_parameter
from proxy.api.openai_request import PRICE_CEILING_HEADER, OpenAIImageBody
from proxy.api.openapi import RATE_LIMIT_HEADERS, Answer, documented, header, to_openapi
from proxy.api.schemas import CancelledImageJob, ImageJob, WebhookSecret
from proxy.api.served_limits import ServedLimits
from proxy.jobs.webhook import MAX_URL_LENGTH
from proxy.routing.choice import HEDGE_HEADER, POLICY_HEADER


class OpenAIJobBody(OpenAIImageBody):
    """What ``POST /v1/images/jobs`` takes: the generation body (no streaming; images always as
    URLs) plus where to be called back. The handler validates the image fields with the image
    body and ``webhook_url`` with the outbound policy; this model is what the document states."""

    model_config = ConfigDict(extra="forbid", title="ImageJobRequest")

    response_format: Literal["url"] | None = Field(
        default=None, description="A job's images are always URLs (served for image_ttl_s); b64_json is refused.")
    webhook_url: Annotated[str, Field(max_length=MAX_URL_LENGTH, json_schema_extra={"format": "uri"})] | None = Field(
        default=None,
        description="Called once when the job succeeds or fails, signed with Boltgate-Signature: https on a "
                    "public address (http or a private address only for the gateway's allowed hosts).")


IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key", param_in="header", required=False, schema=Schema(type=OpenAPIType.STRING),
    description="A submit retried with the same key answers the job the first one queued, as it is now "
                "(x-boltgate-idempotent-replay: true), never a second job (24 h); with another body: 409")

JOB_PATH_PARAMETER_DESCRIPTION = "As POST /v1/images/jobs answered it (its Location header names it)"

JOB_OPERATION = "#/paths/~1v1~1images~1jobs~1{job_id}/"
"""A JSON pointer to the job's path item: ``/`` is written ``~1``."""

ACCEPTED = Answer(ImageJob, "Accepted: the credits are held and the job is queued", {
    "location": header("The job's URL, to poll with GET", pattern=r"^/v1/images/jobs/job_[A-Za-z0-9_-]{22}$",
                       required=True),
    **RATE_LIMIT_HEADERS,
}, links={
    "GetJob": Link(operation_ref=JOB_OPERATION + "get", parameters={"job_id": "$response.body#/id"},
                   description="Poll the job"),
    "CancelJob": Link(operation_ref=JOB_OPERATION + "delete", parameters={"job_id": "$response.body#/id"},
                      description="Cancel the job"),
})


def submit_operation(limits: ServedLimits | None, pins: Sequence[str] = ()) -> type[Operation]:
    """The submit: the generation body and the headers a generation's routing reads (the job
    keeps them for its run), ``x-boltgate-route`` naming ``pins``."""
    source = OpenAIJobBody.model_json_schema()
    schema = to_openapi(limits.document(source) if limits is not None else source)
    body = RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)
    return documented(ACCEPTED, status=202, errors=(400, 401, 402, 403, 404, 409, 413, 429, 500, 503), body=body,
                      parameters=[*(parameter for parameter in PARAMETERS
                                    if parameter.name in (PRICE_CEILING_HEADER, POLICY_HEADER, HEDGE_HEADER)),
                                  route_parameter(pins), IDEMPOTENCY_KEY])


GET_OPERATION = documented(Answer(ImageJob, "The job: its status, and its images, cost and route once it "
                                            "succeeded"), errors=(401, 404, 500, 503))
CANCEL_OPERATION = documented(Answer(CancelledImageJob, "Cancelled: its credits are released"),
                              errors=(401, 404, 409, 500, 503))
SECRET_OPERATION = documented(Answer(WebhookSecret, "The calling key's webhook signing secret"),
                              errors=(401, 500, 503))
