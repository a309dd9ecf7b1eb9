"""``GET /v1/admin/charges``: the charge log, to check a vendor's invoice against (behind the
admin token, like the key handlers).

``since`` is an RFC 3339 date (``2026-11-01``, midnight UTC) or date-time with its zone
(``2026-11-01T08:00:00Z``): the two forms the OpenAPI document states, and nothing else, so a
client generated from the document sends what the gateway reads.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from litestar import Request, Response, get
from litestar.di import Provide
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Schema
from litestar.params import Dependency, Parameter

from core.errors import InvalidRequest
from pricing.charge_log import to_csv
from pricing.ledger import Ledger
from proxy.api.admin import ADMIN_ERRORS, require_admin
from proxy.api.injected import InjectedBilling, InjectedSettings
from proxy.api.openapi import Answer, documented, json_content
from proxy.api.schemas import ChargeList
from proxy.api.security import ADMIN

AdminLedger = Annotated[Ledger, Dependency(skip_validation=True)]
"""``ledger``: the credit ledger, injected only once the admin token checks out."""

RFC3339_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
RFC3339_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")
SINCE_MESSAGE = "'since' must be an RFC 3339 date or date-time, e.g. 2026-11-01 or 2026-11-01T08:00:00Z"

Since = Annotated[str | None, Parameter(
    description="The first charge's time: an RFC 3339 date (midnight UTC) or date-time; default: the start "
                "of this month (UTC)",
    schema_extra={"oneOf": [Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE),
                            Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME)]})]
ChargesFormat = Annotated[Literal["json", "csv"], Parameter(description="json (default) or csv, for a spreadsheet")]


def admin_ledger(request: Request[Any, Any, Any], settings: InjectedSettings, billing: InjectedBilling) -> Ledger:
    """The ledger, for a caller that shows the admin token (the ``ledger`` dependency)."""
    require_admin(settings, request.headers.get("authorization"))
    return billing.ledger


def parse_since(raw: str | None) -> datetime:
    """``raw`` as a time (see the module's docstring); None: the start of this month, UTC."""
    if raw is None:
        return datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    try:
        if RFC3339_DATE.fullmatch(raw):
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
        if RFC3339_DATE_TIME.fullmatch(raw):
            return datetime.fromisoformat(raw.upper())
    except ValueError:
        pass
    raise InvalidRequest(SINCE_MESSAGE, param="since")


CHARGES_CONTENT = {**json_content(ChargeList),
                   "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}


@get("/v1/admin/charges", dependencies={"ledger": Provide(admin_ledger, sync_to_thread=False)},
     operation_class=documented(Answer(CHARGES_CONTENT, "The charges, oldest first"), errors=ADMIN_ERRORS,
                                security=ADMIN))
async def list_charges(ledger: AdminLedger, since: Since = None, format: ChargesFormat = "json") -> Response[Any]:
    """Every charge from ``since`` on: vendor, vendor request id, catalog cost, vendor-reported
    cost and client price (``format=csv`` for a spreadsheet)."""
    records = await ledger.charges(parse_since(since))
    if format == "csv":
        return Response(to_csv(records), media_type="text/csv")
    return Response({"object": "list", "data": [record.to_json() for record in records]})
