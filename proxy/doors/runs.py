"""The mechanics every door shares: the key in the vendor's header, one request served through
the gateway, the finished run kept for polls, errors in the vendor's shape.

A door's create serves the request before it answers, through ``Gateway.generate``: the same
budget hold, routing, failover, ``Idempotency-Key`` replay and single charge as
``/v1/images/generations``, and a client that hangs up cancels it uncharged. The answer has the
vendor's shape (a run or prediction id and a status), and the finished run is kept in the shared
state store for the image lifetime, so the app's polling loop finds it done on its first poll.
A poll reads that record and nothing else: it never charges, and only the key that created the
run can read it (any other key gets the vendor's 404).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from litestar import Request, Response

from core.errors import AuthenticationFailed, BoltgateError, InvalidRequest, NotFound
from core.request import ImageRequest
from pricing.keys import KeyRecord
from proxy.api.disconnect import unless_disconnected
from proxy.billing import Billing
from proxy.doors.spec import DoorSpec
from proxy.gateway import Gateway

AnyRequest = Request[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class DoorRun:
    """A request served through a door, as its polls report it."""

    id: str
    door: str
    key_id: str
    input: dict[str, Any]
    """What the client sent as its input, echoed back as the vendor does."""
    image_urls: list[str]
    created_at: float
    completed_at: float
    cost_usd: str
    """What the client was charged (the gateway's price, not the serving vendor's)."""
    backend: str
    """The vendor that served it (maybe not the one whose door it came in by)."""
    extra: dict[str, Any]
    """Fields the vendor echoes back (Runflow's ``metadata`` and ``client_ref``)."""

    @property
    def seconds(self) -> float:
        return self.completed_at - self.created_at


def new_run_id(prefix: str = "") -> str:
    return f"{prefix}{secrets.token_hex(12)}"


async def authenticate(request: AnyRequest, spec: DoorSpec, billing: Billing) -> KeyRecord:
    """The gateway key, from whichever header the vendor's clients put their key in."""
    headers = request.headers
    if "bearer" in spec.auth and (authorization := headers.get("authorization")) is not None:
        return await billing.authenticate(authorization)
    if "x-api-key" in spec.auth and (token := (headers.get("x-api-key") or "").strip()):
        return await billing.authenticate(f"Bearer {token}")
    return await billing.authenticate(None)


async def json_body(request: AnyRequest) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc.msg}", code="invalid_json") from exc


class DoorRuns:
    """Serves door requests and keeps their finished runs for polls (``door:<door>:<id>``)."""

    def __init__(self, gateway: Gateway, ttl_s: float) -> None:
        self.gateway = gateway
        self.ttl_s = ttl_s

    async def serve(self, request: AnyRequest, key: KeyRecord, image_request: ImageRequest, *, door: str,
                    run_id: str, input: dict[str, Any], extra: dict[str, Any] | None = None,
                    ) -> tuple[DoorRun, dict[str, str]]:
        """Generate (billed once, as any request), keep the run, and return it with the headers
        that say how it was served and what it cost."""
        created = time.time()
        served = await unless_disconnected(request, self.gateway.generate(
            image_request, base_url=self.gateway.links.for_request(request), key=key,
            idempotency_key=request.headers.get("idempotency-key"),
        ))
        headers = served.headers
        run = DoorRun(
            id=run_id, door=door, key_id=key.key_id, input=input,
            image_urls=[item["url"] for item in served.body["data"]],
            created_at=created, completed_at=time.time(),
            cost_usd=headers.get("x-boltgate-cost-usd", "0"), backend=headers.get("x-boltgate-backend", ""),
            extra=extra or {},
        )
        await self.gateway.state.set(self._key(door, run_id), orjson.dumps(asdict(run)), ttl=self.ttl_s)
        return run, headers

    async def find(self, door: str, run_id: str, key: KeyRecord, what: str) -> DoorRun:
        """The run ``key`` created; ``NotFound`` for an unknown, expired or someone else's run."""
        raw = await self.gateway.state.get(self._key(door, run_id)) if len(run_id) <= 128 else None
        run = DoorRun(**orjson.loads(raw)) if raw is not None else None
        if run is None or run.key_id != key.key_id:
            raise NotFound(f"{what} {run_id[:128]} not found", param="id")
        return run

    @staticmethod
    def _key(door: str, run_id: str) -> str:
        return f"door:{door}:{run_id}"


def iso_time(epoch: float) -> str:
    """RFC 3339 in UTC, as the vendors write their timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def error_handler(spec: DoorSpec) -> Any:
    """The door's one mapping of gateway errors to HTTP: the gateway's status (a body the vendor
    would refuse gets the vendor's status for that), the vendor's body."""

    def handle(_: AnyRequest, error: BoltgateError) -> Response[bytes]:
        status = spec.invalid_status if isinstance(error, InvalidRequest) and error.status_code == 400 \
            else error.status_code
        headers = dict(error.headers)
        if isinstance(error, AuthenticationFailed):
            headers.setdefault("www-authenticate", "Bearer")
        return Response(content=orjson.dumps(spec.error_body(error)), status_code=status,
                        media_type="application/json", headers=headers)

    return handle
