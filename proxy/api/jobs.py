"""``/v1/images/jobs``: submit a generation to run in the background, poll it, cancel it; and
``GET /v1/webhooks/secret``, the calling key's webhook signing secret.

``POST`` takes the body of ``/v1/images/generations`` plus an optional ``webhook_url`` and
answers 202 with the job (``Location`` names it) once its credits are held; ``GET`` answers the
job, with its images, cost and route once it succeeded; ``DELETE`` cancels it. Jobs belong to
the key that submitted them: another key gets 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request, Response, delete, get, post

from core.errors import InvalidRequest
from proxy.api.injected import InjectedGateway, InjectedJobs
from proxy.api.openai_request import PRICE_CEILING_HEADER

AnyRequest = Request[Any, Any, Any]


def _json(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=orjson.dumps(body), status_code=status_code, media_type="application/json",
                    headers=headers)


@post("/v1/images/jobs", status_code=202, include_in_schema=False)  # not yet in the OpenAPI document
async def submit_job(request: AnyRequest, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc.msg}",
                             code="invalid_json") from exc
    ceiling = request.headers.get(PRICE_CEILING_HEADER)
    if isinstance(payload, dict) and ceiling is not None and "max_price_usd" not in payload:
        payload["max_price_usd"] = ceiling
    base_url = gateway.links.for_request(request)
    accepted = await jobs.submit(payload, key, base_url)
    return _json(accepted.job, 202, {**accepted.headers, "location": f"/v1/images/jobs/{accepted.job['id']}"})


@get("/v1/images/jobs/{job_id:str}", include_in_schema=False)
async def get_job(request: AnyRequest, job_id: str, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    return _json(await jobs.view(job_id, key))


@delete("/v1/images/jobs/{job_id:str}", status_code=200, include_in_schema=False)
async def cancel_job(request: AnyRequest, job_id: str, gateway: InjectedGateway,
                     jobs: InjectedJobs) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    return _json(await jobs.cancel(job_id, key))


@get("/v1/webhooks/secret", include_in_schema=False)
async def webhook_secret(request: AnyRequest, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    """The secret that signs this key's job webhooks (whoever holds the key may read it)."""
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    return _json({"object": "webhook_secret", "secret": await jobs.secrets.secret_for(key.key_id),
                  "signature_header": "Boltgate-Signature"})
