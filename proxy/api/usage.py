"""``GET /v1/usage``: the calling key's spend by day and by vendor, and what its budget has left."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from proxy.api.injected import InjectedBilling
from proxy.api.openapi import Answer, documented
from proxy.api.schemas import KeyUsage


@get("/v1/usage", operation_class=documented(Answer(KeyUsage, "The key's spend"), errors=(401, 500)))
async def key_usage(request: Request[Any, Any, Any], billing: InjectedBilling) -> dict[str, object]:
    key = await billing.authenticate(request.headers.get("authorization"))
    usage = await billing.ledger.usage(key.key_id, key.budget_credits)
    return {"object": "usage", "key_id": key.key_id, "name": key.name, **usage}
