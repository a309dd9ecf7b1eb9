"""``/v1/admin/keys``: create, list and revoke client keys; ``/v1/admin/charges``: the charge
log, to check a vendor's invoice against. Both behind the admin token.

A created key is shown once, in the creation answer; the gateway keeps only its hash.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, post
from litestar.di import Provide
from litestar.params import Dependency
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from pricing.charge_log import to_csv
from pricing.config import BudgetCredits
from pricing.keys import ApiKeyRegistry, KeyRecord
from pricing.ledger import Ledger
from proxy.api.injected import InjectedBilling, InjectedSettings
from proxy.billing import bearer_token

AnyRequest = Request[Any, Any, Any]
AdminKeys = Annotated[ApiKeyRegistry, Dependency(skip_validation=True)]
"""``keys``: the client key registry, injected only once the admin token checks out."""
AdminLedger = Annotated[Ledger, Dependency(skip_validation=True)]
"""``ledger``: the credit ledger, injected only once the admin token checks out."""


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    budget_credits: BudgetCredits | None = None


def check_admin_token(request: AnyRequest, settings: InjectedSettings) -> None:
    if settings.admin_token is None:
        raise PermissionDenied("The admin API is off: set BOLTGATE_ADMIN_TOKEN to enable it")
    sent = bearer_token(request.headers.get("authorization"))
    if sent is None:
        raise AuthenticationFailed("The admin API needs 'Authorization: Bearer <admin token>'")
    if not hmac.compare_digest(sent.encode(), settings.admin_token.get_secret_value().encode()):
        raise PermissionDenied("Wrong admin token")


def admin_key_registry(request: AnyRequest, settings: InjectedSettings, billing: InjectedBilling) -> ApiKeyRegistry:
    """The client key registry, for a caller that shows the admin token (the ``keys`` dependency
    of the key handlers)."""
    check_admin_token(request, settings)
    return billing.keys


def admin_ledger(request: AnyRequest, settings: InjectedSettings, billing: InjectedBilling) -> Ledger:
    """The ledger, for a caller that shows the admin token (the ``ledger`` dependency)."""
    check_admin_token(request, settings)
    return billing.ledger


def parse_since(raw: str | None) -> datetime:
    """An ISO 8601 date or time (UTC when it names no zone); default: the start of this month."""
    if raw is None:
        return datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    try:
        since = datetime.fromisoformat(raw)
    except ValueError as error:
        raise InvalidRequest("'since' must be an ISO 8601 date or time, e.g. 2026-11-01", param="since") from error
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


def _describe(record: KeyRecord) -> dict[str, object]:
    return {
        "id": record.key_id,
        "name": record.name,
        "budget_credits": None if record.budget_credits is None else str(record.budget_credits),
        "created": record.created.isoformat(),
        "revoked": record.revoked,
        "static": record.static,
    }


@post("/", status_code=201)
async def create_key(request: AnyRequest, keys: AdminKeys) -> dict[str, object]:
    try:
        new = NewKey.model_validate_json(await request.body())
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        param = str(first["loc"][0]) if first["loc"] else None
        raise InvalidRequest(f"Invalid '{param}': {first['msg']}", param=param) from error
    key, record = await keys.create(new.name, new.budget_credits)
    return {"key": key, **_describe(record)}


@get("/")
async def list_keys(keys: AdminKeys) -> dict[str, object]:
    return {"object": "list", "data": [_describe(record) for record in await keys.list()]}


@delete("/{key_id:str}", status_code=200)
async def revoke_key(keys: AdminKeys, key_id: str) -> dict[str, object]:
    if not await keys.revoke_id(key_id):
        raise NotFound(f"No key with id {key_id}", param="key_id")
    return {"id": key_id, "revoked": True}


@get("/")
async def list_charges(ledger: AdminLedger, since: str | None = None, format: str = "json") -> Response[Any]:
    """Every charge from ``since`` on: vendor, vendor request id, catalog cost, vendor-reported
    cost and client price (``format=csv`` for a spreadsheet)."""
    if format not in ("json", "csv"):
        raise InvalidRequest("'format' must be json or csv", param="format")
    records = await ledger.charges(parse_since(since))
    if format == "csv":
        return Response(to_csv(records), media_type="text/csv")
    return Response({"object": "list", "data": [record.to_json() for record in records]})


ADMIN_CHARGES = Router(
    path="/v1/admin/charges", route_handlers=[list_charges],
    dependencies={"ledger": Provide(admin_ledger, sync_to_thread=False)},
)

ADMIN_KEYS = Router(
    path="/v1/admin/keys", route_handlers=[create_key, list_keys, revoke_key],
    dependencies={"keys": Provide(admin_key_registry, sync_to_thread=False)},
)
