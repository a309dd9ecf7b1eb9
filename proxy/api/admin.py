"""``/v1/admin/keys``: create, list and revoke client keys, behind the admin token (which
``/v1/admin/charges``, in ``proxy.api.charges``, checks the same way).

A created key is shown once, in the creation answer, with its webhook secret (which its holder
can read again at ``GET /v1/webhooks/secret``); the gateway keeps only the key's hash.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.di import Provide
from litestar.openapi.spec import RequestBody
from litestar.params import Dependency, Parameter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from pricing.config import MAX_BUDGET_CREDITS, KeyLimits, KeyRouting
from pricing.key_names import PrintableName
from pricing.keys import ApiKeyRegistry, KeyRecord
from proxy.api.injected import InjectedBilling, InjectedJobs, InjectedSettings
from proxy.api.openapi import Answer, documented, json_content
from proxy.api.schemas import AdminKeyCreated, AdminKeyList, KeyRevoked
from proxy.api.security import ADMIN
from proxy.billing import bearer_token
from proxy.settings import Settings

AnyRequest = Request[Any, Any, Any]
KeyId = Annotated[str, Parameter(pattern=r"^[0-9a-f]{64}$", description="The key's id (its SHA-256, in hex)")]
AdminKeys = Annotated[ApiKeyRegistry, Dependency(skip_validation=True)]
"""``keys``: the client key registry, injected only once the admin token checks out."""


MAX_BUDGET = int(MAX_BUDGET_CREDITS)
BUDGET_PATTERN = r"^([0-9]{1,12}(\.[0-9]{1,6})?|1000000000000(\.0{1,6})?)$"
"""A budget in a string: plain decimal credits (no exponent), at most 10^12 and six decimals."""


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[PrintableName, Field(min_length=1, max_length=100)]
    budget_credits: (Annotated[float, Field(ge=0, le=MAX_BUDGET, allow_inf_nan=False)]
                     | Annotated[str, Field(pattern=BUDGET_PATTERN)] | None) = Field(
        default=None, description="Credits the key may spend (a number or a decimal string); none: no limit")
    limits: KeyLimits | None = Field(default=None, description="The key's rate limits; none: the gateway's")
    routing: KeyRouting | None = Field(default=None, description="What its requests may ask of the router; "
                                                                 "none: anything")

    @property
    def budget(self) -> Decimal | None:
        """The budget as money: a string exactly as written, a number by its shortest spelling."""
        value = self.budget_credits
        if value is None:
            return None
        # abs: -0.0 passes ge=0 but would be stored as "-0.0" (a string cannot be negative)
        return Decimal(value if isinstance(value, str) else repr(abs(value)))


NESTED_FIELDS = frozenset({"limits", "routing"})
"""Fields that hold an object, whose errors name the field inside it (the others' locations carry
pydantic's union branches, which mean nothing to a client)."""


def require_admin(settings: Settings, authorization: str | None) -> None:
    """Refuse a caller that does not show the admin token: 401 without any (as the document's
    ``adminToken`` scheme says), 403 with a wrong one or when none is configured."""
    sent = bearer_token(authorization)
    if sent is None:
        raise AuthenticationFailed("The admin API needs 'Authorization: Bearer <admin token>'")
    if settings.admin_token is None:
        raise PermissionDenied("The admin API is off: set BOLTGATE_ADMIN_TOKEN to enable it")
    if not is_admin_token(settings, sent):
        raise PermissionDenied("Wrong admin token")


def is_admin_token(settings: Settings, token: str | None) -> bool:
    if settings.admin_token is None or token is None:
        return False
    return hmac.compare_digest(token.encode(), settings.admin_token.get_secret_value().encode())


def admin_key_registry(request: AnyRequest, settings: InjectedSettings, billing: InjectedBilling) -> ApiKeyRegistry:
    """The client key registry, for a caller that shows the admin token (the ``keys`` dependency
    of the key handlers)."""
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


ADMIN_ERRORS = (400, 401, 403, 413, 500, 503)
KEYS_DEPENDENCY = {"keys": Provide(admin_key_registry, sync_to_thread=False)}
NEW_KEY_BODY = RequestBody(content=json_content(NewKey), required=True)


@post("/v1/admin/keys", status_code=201, dependencies=KEYS_DEPENDENCY,
      operation_class=documented(Answer(AdminKeyCreated, "The new key and its webhook secret, shown once"),
                                 status=201, errors=ADMIN_ERRORS, body=NEW_KEY_BODY, security=ADMIN))
async def create_key(request: AnyRequest, keys: AdminKeys, jobs: InjectedJobs) -> dict[str, object]:
    try:
        new = NewKey.model_validate_json(await request.body(), strict=True)
    except ValidationError as error:
        raise _invalid_new_key(error) from error
    key, record = await keys.create(new.name, new.budget, new.limits, new.routing)
    return {"key": key, **_describe(record), "webhook_secret": await jobs.secrets.secret_for(record.key_id)}


def _invalid_new_key(error: ValidationError) -> InvalidRequest:
    first = error.errors(include_url=False)[0]
    if not first["loc"]:
        return InvalidRequest('The body must be a JSON object such as {"name": "team-a", "budget_credits": 500}',
                              code="invalid_json" if first["type"] == "json_invalid" else None)
    param = str(first["loc"][0])
    if param in NESTED_FIELDS:  # name the field inside: routing.policies.0
        param = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return InvalidRequest(f"Unrecognized request argument supplied: {param}", param=param,
                              code="unknown_parameter")
    return InvalidRequest(f"Invalid '{param}': {first['msg'].removeprefix('Value error, ')}", param=param)


@get("/v1/admin/keys", dependencies=KEYS_DEPENDENCY,
     operation_class=documented(Answer(AdminKeyList, "Every key (without the keys themselves)"), security=ADMIN,
                                errors=ADMIN_ERRORS))
async def list_keys(keys: AdminKeys) -> dict[str, object]:
    return {"object": "list", "data": [_describe(record) for record in await keys.list()]}


@delete("/v1/admin/keys/{key_id:str}", status_code=200, dependencies=KEYS_DEPENDENCY,
        operation_class=documented(Answer(KeyRevoked, "Revoked"), errors=(*ADMIN_ERRORS, 404),
                                   security=ADMIN))
async def revoke_key(keys: AdminKeys, key_id: KeyId) -> dict[str, object]:
    if not await keys.revoke_id(key_id):
        raise NotFound(f"No key with id {key_id}", param="key_id")
    return {"id": key_id, "revoked": True}


ADMIN_KEY_HANDLERS = [create_key, list_keys, revoke_key]
