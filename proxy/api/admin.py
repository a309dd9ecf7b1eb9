"""``/v1/admin/keys``: create, list and revoke client keys, behind the admin token.

A created key is shown once, in the creation answer; the gateway keeps only its hash.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Any

from litestar import Request, delete, get, post
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from pricing.config import KeyLimits
from pricing.keys import KeyRecord
from proxy.billing import bearer_token
from proxy.gateway import Gateway

AnyRequest = Request[Any, Any, Any]


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    budget_credits: Decimal | None = Field(default=None, ge=0)
    limits: KeyLimits | None = None


def _admin_gateway(request: AnyRequest) -> Gateway:
    token = request.app.state.admin_token
    if token is None:
        raise PermissionDenied("The admin API is off: set BOLTGATE_ADMIN_TOKEN to enable it")
    sent = bearer_token(request.headers.get("authorization"))
    if sent is None:
        raise AuthenticationFailed("The admin API needs 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise PermissionDenied("Wrong admin token")
    gateway: Gateway = request.app.state.gateway
    return gateway


def _describe(record: KeyRecord) -> dict[str, object]:
    return {
        "id": record.key_id,
        "name": record.name,
        "budget_credits": None if record.budget_credits is None else str(record.budget_credits),
        "created": record.created.isoformat(),
        "revoked": record.revoked,
        "static": record.static,
        "limits": None if record.limits is None else record.limits.model_dump(),
    }


@post("/v1/admin/keys", status_code=201)
async def create_key(request: AnyRequest) -> dict[str, object]:
    gateway = _admin_gateway(request)
    try:
        new = NewKey.model_validate_json(await request.body())
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        param = str(first["loc"][0]) if first["loc"] else None
        raise InvalidRequest(f"Invalid '{param}': {first['msg']}", param=param) from error
    key, record = await gateway.billing.keys.create(new.name, new.budget_credits, new.limits)
    return {"key": key, **_describe(record)}


@get("/v1/admin/keys")
async def list_keys(request: AnyRequest) -> dict[str, object]:
    gateway = _admin_gateway(request)
    return {"object": "list", "data": [_describe(record) for record in await gateway.billing.keys.list()]}


@delete("/v1/admin/keys/{key_id:str}", status_code=200)
async def revoke_key(request: AnyRequest, key_id: str) -> dict[str, object]:
    gateway = _admin_gateway(request)
    if not await gateway.billing.keys.revoke_id(key_id):
        raise NotFound(f"No key with id {key_id}", param="key_id")
    return {"id": key_id, "revoked": True}
