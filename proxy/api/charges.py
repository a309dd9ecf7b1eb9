"""``GET /v1/admin/charges``: the charge log, to check a vendor's invoice against (behind the
admin token, like the key handlers).

``since`` is an RFC 3339 date (``2026-11-01``, midnight UTC) or date-time with its zone
(``2026-11-01T08:00:00Z``): the two forms the OpenAPI document states, and nothing else, so a
client generated from the document sends what the gateway reads.

The log comes in pages, as OpenAI's list endpoints page: ``limit`` charges at most (1000 by
default, 10,000 at most) and ``has_more`` when more follow; ``next_after`` is the position of the
page's last charge (``<number>-<number>``, opaque), passed back as ``after`` for the next page
(with the same ``since``). A position tells apart charges logged at the same instant, so no charge
is skipped or repeated at a page boundary. Both formats carry the same two facts in headers too
(``x-boltgate-has-more``, ``x-boltgate-next-after``): that is how a CSV page, which has no room
for them, says it.
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
from core.state.ledger_store import POSITION_PATTERN
from pricing.charge_log import to_csv
from pricing.ledger import Ledger
from proxy.api.admin import ADMIN_ERRORS, require_admin
from proxy.api.injected import InjectedBilling, InjectedSettings
from proxy.api.openapi import Answer, documented, header, json_content
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
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"The most charges on one page (1-{MAX_LIMIT})")]
After = Annotated[str | None, Parameter(
    pattern=POSITION_PATTERN,
    description="Start after this position: the next_after (or x-boltgate-next-after) of the page before")]
PAGE_HEADERS = {
    "x-boltgate-has-more": header("true when more charges follow this page", pattern="^(true|false)$",
                                  required=True),
    "x-boltgate-next-after": header("The position to pass as 'after' for the next page (next_after)",
                                    pattern=POSITION_PATTERN),
}


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
     operation_class=documented(Answer(CHARGES_CONTENT, "A page of the charges, oldest first", PAGE_HEADERS),
                                errors=ADMIN_ERRORS, security=ADMIN))
async def list_charges(ledger: AdminLedger, since: Since = None, format: ChargesFormat = "json",
                       limit: Limit = DEFAULT_LIMIT, after: After = None) -> Response[Any]:
    """The charges from ``since`` on, a page at a time: vendor, vendor request id, catalog cost,
    vendor-reported cost and client price (``format=csv`` for a spreadsheet)."""
    page = await ledger.charges(parse_since(since), limit=limit, after=after)
    headers = {"x-boltgate-has-more": "true" if page.has_more else "false"}
    if page.next_after is not None:
        headers["x-boltgate-next-after"] = page.next_after
    if format == "csv":
        return Response(to_csv(page.records), media_type="text/csv", headers=headers)
    return Response({"object": "list", "data": [record.to_json() for record in page.records],
                     "has_more": page.has_more, "next_after": page.next_after}, headers=headers)
