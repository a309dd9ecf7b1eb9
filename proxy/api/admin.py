"""``/v1/admin/keys``: create, list and revoke client keys, behind the admin token.

A created key is shown once, in the creation answer; the gateway keeps only its hash.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Annotated, Any

from litestar import Request, Router, delete, get, post
from litestar.di import Provide
from litestar.params import Dependency
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from pricing.config import KeyLimits, KeyRouting
from pricing.keys import ApiKeyRegistry, KeyRecord
from proxy.api.injected import InjectedBilling, InjectedSettings
from proxy.billing import bearer_token
from proxy.settings import Settings

AnyRequest = Request[Any, Any, Any]
AdminKeys = Annotated[ApiKeyRegistry, Dependency(skip_validation=True)]
"""``keys``: the client key registry, injected only once the admin token checks out."""


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    budget_credits: Decimal | None = Field(default=None, ge=0)
    limits: KeyLimits | None = None
    routing: KeyRouting | None = None


def require_admin(settings: Settings, authorization: str | None) -> None:
    """Refuse a caller that does not show the admin token (403 when none is configured)."""
    if settings.admin_token is None:
        raise PermissionDenied("The admin API is off: set BOLTGATE_ADMIN_TOKEN to enable it")
    sent = bearer_token(authorization)
    if sent is None:
        raise AuthenticationFailed("The admin API needs 'Authorization: Bearer <admin token>'")
    if not is_admin_token(settings, sent):
        raise PermissionDenied("Wrong admin token")


def is_admin_token(settings: Settings, token: str | None) -> bool:
    if settings.admin_token is None or token is None:
        return False
    return hmac.compare_digest(token.encode(), settings.admin_token.get_secret_value().encode())


def admin_key_registry(request: AnyRequest, settings: InjectedSettings, billing: InjectedBilling) -> ApiKeyRegistry:
    """The client key registry, for a caller that shows the admin token (the ``keys`` dependency
    of every admin handler)."""
    require_admin(settings, request.headers.get("authorization"))
    return billing.keys


def _describe(record: KeyRecord) -> dict[str, object]:
    return {
        "id": record.key_id,
        "name": record.name,
        "budget_credits": None if record.budget_credits is None else str(record.budget_credits),
        "created": record.created.isoformat(),
        "revoked": record.revoked,
        "static": record.static,
        "limits": None if record.limits is None else record.limits.model_dump(),
        "routing": None if record.routing is None else record.routing.model_dump(mode="json"),
    }


@post("/", status_code=201)
async def create_key(request: AnyRequest, keys: AdminKeys) -> dict[str, object]:
    try:
        new = NewKey.model_validate_json(await request.body())
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        param = str(first["loc"][0]) if first["loc"] else None
        raise InvalidRequest(f"Invalid '{param}': {first['msg']}", param=param) from error
    key, record = await keys.create(new.name, new.budget_credits, new.limits, new.routing)
    return {"key": key, **_describe(record)}


@get("/")
async def list_keys(keys: AdminKeys) -> dict[str, object]:
    return {"object": "list", "data": [_describe(record) for record in await keys.list()]}


@delete("/{key_id:str}", status_code=200)
async def revoke_key(keys: AdminKeys, key_id: str) -> dict[str, object]:
    if not await keys.revoke_id(key_id):
        raise NotFound(f"No key with id {key_id}", param="key_id")
    return {"id": key_id, "revoked": True}


ADMIN_KEYS = Router(
    path="/v1/admin/keys", route_handlers=[create_key, list_keys, revoke_key],
    dependencies={"keys": Provide(admin_key_registry, sync_to_thread=False)},
)
