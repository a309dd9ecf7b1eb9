"""``/v1/images/jobs``: submit a generation to run in the background, poll it, cancel it; and
``GET /v1/webhooks/secret``, the calling key's webhook signing secret.

``POST`` takes the body of ``/v1/images/generations`` plus an optional ``webhook_url`` and
answers 202 with the job (``Location`` names it) once it is counted against the key's rate
limits and its credits are held. It reads ``x-boltgate-routing-policy``, ``x-boltgate-route``
and ``x-boltgate-hedge`` as generations do, and the job keeps them for its run. ``GET``
answers the job, with its images, cost and route once it succeeded; ``DELETE`` cancels it.
Jobs belong to the key that submitted them: another key gets 404. The answers are documented
by ``proxy.api.job_operations``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from litestar import Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from core.errors import InvalidRequest
from proxy.api.injected import InjectedGateway, InjectedJobs
from proxy.api.job_operations import (
    CANCEL_OPERATION,
    GET_OPERATION,
    JOB_PATH_PARAMETER_DESCRIPTION,
    SECRET_OPERATION,
    submit_operation,
)
from proxy.api.openai_request import PRICE_CEILING_HEADER, price_ceiling
from proxy.api.served_limits import ServedLimits
from proxy.jobs.submit_once import submit_job_once
from proxy.routing.choice import RoutingChoice

AnyRequest = Request[Any, Any, Any]
JobId = Annotated[str, Parameter(description=JOB_PATH_PARAMETER_DESCRIPTION)]


def _json(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=orjson.dumps(body), status_code=status_code, media_type="application/json",
                    headers=headers)


async def submit_job(request: AnyRequest, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc.msg}",
                             code="invalid_json") from exc
    ceiling = request.headers.get(PRICE_CEILING_HEADER)
    price_ceiling(ceiling)  # a header is checked even where the body's field wins over it
    asked = RoutingChoice.from_headers(request.headers)  # as generations read them: policy, pin, hedging
    if isinstance(payload, dict):  # a body's field, when not null, wins over its header
        for field, value in (("max_price_usd", ceiling), ("routing_policy", asked.policy)):
            if value is not None and payload.get(field) is None:
                payload[field] = value
    base_url = gateway.links.for_request(request)
    idempotency_key = request.headers.get("idempotency-key")
    accepted = (await jobs.submit(payload, key, base_url, asked) if idempotency_key is None
                else await submit_job_once(jobs, payload, key, base_url, asked, idempotency_key))
    return _json(accepted.job, 202, {**accepted.headers, "location": f"/v1/images/jobs/{accepted.job['id']}"})


@get("/v1/images/jobs/{job_id:str}", operation_class=GET_OPERATION)
async def get_job(request: AnyRequest, job_id: JobId, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    return _json(await jobs.view(job_id, key))


@delete("/v1/images/jobs/{job_id:str}", status_code=200, operation_class=CANCEL_OPERATION)
async def cancel_job(request: AnyRequest, job_id: JobId, gateway: InjectedGateway,
                     jobs: InjectedJobs) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    return _json(await jobs.cancel(job_id, key))


@get("/v1/webhooks/secret", operation_class=SECRET_OPERATION)
async def webhook_secret(request: AnyRequest, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    """The secret that signs this key's job webhooks (whoever holds the key may read it)."""
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    return _json({"object": "webhook_secret", "secret": await jobs.secrets.secret_for(key.key_id),
                  "signature_header": "Boltgate-Signature"})


def job_handlers(generations: ServedLimits | None, pins: Sequence[str] = ()) -> list[HTTPRouteHandler]:
    """The job endpoints, the submit body documented with what this deployment's routes serve
    (``pins``: what ``x-boltgate-route`` may name)."""
    return [
        post("/v1/images/jobs", status_code=202, operation_class=submit_operation(generations, pins))(submit_job),
        get_job, cancel_job, webhook_secret,
    ]
