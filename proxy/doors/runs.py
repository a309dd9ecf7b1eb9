"""The mechanics every door shares: the key in the vendor's header, a run queued as an async job,
the job read back for polls, errors in the vendor's shape.

A door whose vendor answers a create at once (Runflow's runs, Eachlabs' predictions) submits the
request to the gateway's async job engine (``proxy.jobs``) and answers with the job's id in the
vendor's shape before the image is made: the same validation, route check and credit hold as
``POST /v1/images/jobs`` (a key over budget gets its 402 at create), the job queue's restart
survival, and one charge when the job's run settles. A poll reads the job and maps its state onto
the vendor's status values; it never charges, and only the key that created the run can read it
(any other key gets the vendor's 404, exactly as for no such run). A cancel, where the vendor
publishes one, is the job's cancel: the hold released, the run stopped, nothing charged.

A door whose vendor answers with the image (imageapi's generate) serves it through
``Gateway.generate`` before it answers, as ``/v1/images/generations`` does (``serve_now``).

Every door reads what ``/v1/images/generations`` reads besides its body: ``Idempotency-Key``
(a create retried under the same key answers the run it made the first time, never a second
run, even when the first create's process died before answering: the key's claim names the run;
the key with another request is a 409 ``IdempotencyConflict``, in the door's error shape)
and the router headers (``x-boltgate-route``, ``x-boltgate-routing-policy``,
``x-boltgate-hedge``, checked against the key and kept with the run as a job keeps them).

The job keeps the door's own fields (``JobRecord.door``: the door, the input as the client sent
it, what the vendor echoes back), so a run is one record however many processes poll it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from litestar import Request, Response

from core.errors import AuthenticationFailed, BoltgateError, InvalidRequest, NotFound
from core.request import ImageRequest
from pricing.keys import KeyRecord
from proxy.api.disconnect import unless_disconnected
from proxy.billing import Billing, bearer_token
from proxy.doors.spec import DoorSpec
from proxy.gateway import Gateway, ImagesResponse
from proxy.jobs.record import JobEnd, JobRecord
from proxy.jobs.service import JobService
from proxy.jobs.submit_once import Replayed, fingerprint, submit_once
from proxy.routing.choice import RoutingChoice

AnyRequest = Request[Any, Any, Any]
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class DoorRun:
    """A request that came in by a door, as its polls report it (read from its job)."""

    id: str
    door: str
    status: RunStatus
    input: dict[str, Any]
    """What the client sent as its input, echoed back as the vendor does."""
    extra: dict[str, Any]
    """Fields the vendor echoes back (Runflow's ``model``, ``metadata`` and ``client_ref``)."""
    created_at: float
    started_at: float | None = None
    completed_at: float | None = None
    image_urls: tuple[str, ...] = ()
    cost_usd: str = "0"
    """What the client was charged (the gateway's price, not the serving vendor's); 0 until then."""
    backend: str | None = None
    """The vendor that served it (maybe not the one whose door it came in by)."""
    error: dict[str, Any] | None = None
    """Why it failed: OpenAI's error object (``message``, ``type``, ``param``, ``code``)."""
    replayed: bool = False
    """A create retried under its ``Idempotency-Key``: this is the run the first one made."""

    @property
    def seconds(self) -> float | None:
        """How long it ran, once it ended."""
        if self.completed_at is None:
            return None
        return self.completed_at - (self.started_at or self.created_at)

    @property
    def headers(self) -> dict[str, str]:
        """``x-boltgate-backend`` once the run was served: who served it."""
        return {"x-boltgate-backend": self.backend} if self.backend else {}

    @property
    def create_headers(self) -> dict[str, str]:
        """A create's answer says when it is the replay of an earlier create with its key."""
        return {"x-boltgate-idempotent-replay": "true"} if self.replayed else {}

    @classmethod
    def of(cls, record: JobRecord, end: JobEnd | None) -> DoorRun:
        door = record.door or {}
        result = (end.result if end is not None else None) or {}
        return cls(id=record.id, door=door.get("name", ""), status=record.phase if end is None else end.status,
                   input=door.get("input", {}), extra=door.get("extra", {}), created_at=record.created,
                   started_at=record.started, completed_at=None if end is None else end.finished,
                   image_urls=tuple(item["url"] for item in result.get("data", ()) if "url" in item),
                   cost_usd=str(result.get("billing", {}).get("cost_usd", "0")),
                   backend=result.get("served", {}).get("vendor"), error=None if end is None else end.error)


_CARRIED = ("model", "negative_prompt", "n", "steps", "guidance_scale", "seed", "output_format")
"""``ImageRequest`` fields a generation body names alike, carried when the client gave them."""


def generation_body(request: ImageRequest, routing_policy: str | None = None) -> dict[str, Any]:
    """``request`` as the ``/v1/images/generations`` body a job keeps, naming only what the
    client gave (a field given narrows the routes to vendors that take it, as in any request),
    with the ``routing_policy`` it asked for; the job validates it again when it is submitted
    and run."""
    asked = request.model_fields_set
    body: dict[str, Any] = {name: getattr(request, name) for name in _CARRIED if name in asked}
    body.update(prompt=request.prompt, size=request.size, response_format="url")
    if routing_policy is not None:
        body["routing_policy"] = routing_policy
    return body


async def authenticate(request: AnyRequest, spec: DoorSpec, billing: Billing) -> KeyRecord:
    """The gateway key, from whichever header the vendor's clients put their key in: a Bearer
    token first, then ``X-API-Key`` where the vendor takes it. An ``Authorization`` of another
    scheme (a proxy's Basic, say) carries no vendor key, so it does not hide ``X-API-Key``; with
    nothing else sent it is what the billing judges (and refuses in its own words)."""
    headers = request.headers
    authorization = headers.get("authorization") if "bearer" in spec.auth else None
    if bearer_token(authorization) is not None:
        return await billing.authenticate(authorization)
    if "x-api-key" in spec.auth and (token := (headers.get("x-api-key") or "").strip()):
        return await billing.authenticate(f"Bearer {token}")
    return await billing.authenticate(authorization)


async def json_body(request: AnyRequest) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc.msg}", code="invalid_json") from exc


class DoorRuns:
    """One door's runs, each an async job created with the door's fields."""

    def __init__(self, door: str, jobs: JobService) -> None:
        self.door = door
        self.jobs = jobs

    async def submit(self, request: AnyRequest, key: KeyRecord, image_request: ImageRequest, *,
                     input: dict[str, Any], extra: dict[str, Any] | None = None) -> DoorRun:
        """Queue the run (its credits held, as any job's) and return it, queued; with an
        ``Idempotency-Key`` the create is made once (``_submit_once``)."""
        asked = RoutingChoice.from_headers(request.headers)
        origin = {"name": self.door, "input": input, "extra": extra or {}}
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is None:
            return await self._enqueue(request, key, image_request, origin, asked)
        return await self._submit_once(request, key, image_request, origin, asked, idempotency_key)

    async def _enqueue(self, request: AnyRequest, key: KeyRecord, image_request: ImageRequest,
                       origin: dict[str, Any], asked: RoutingChoice, run_id: str | None = None) -> DoorRun:
        record, _ = await self.jobs.enqueue(generation_body(image_request, asked.policy), key,
                                            self.jobs.gateway.links.for_request(request), door=origin,
                                            asked=asked, job_id=run_id)
        return DoorRun.of(record, None)

    async def _submit_once(self, request: AnyRequest, key: KeyRecord, image_request: ImageRequest,
                           origin: dict[str, Any], asked: RoutingChoice, idempotency_key: str) -> DoorRun:
        """The run this key's create made under ``idempotency_key``, or a new one
        (``proxy.jobs.submit_once``): a client retrying a create whose answer it lost gets its
        run, not a second one charged again. The same key with another request (another input,
        door fields or router headers) is a 409."""
        outcome = await submit_once(
            self.jobs, key, f"door:{self.door}:{idempotency_key}", _fingerprint(origin, asked),
            lambda run_id: self._enqueue(request, key, image_request, origin, asked, run_id))
        if isinstance(outcome, Replayed):
            return replace(DoorRun.of(outcome.record, outcome.end), replayed=True)
        return outcome

    async def find(self, run_id: str, key: KeyRecord, what: str) -> DoorRun:
        """The run ``key`` created by this door; ``NotFound`` for an unknown, expired, someone
        else's or another door's run."""
        record = await self._record(run_id, key, what)
        return DoorRun.of(record, await self.jobs.book.end(record.id))

    async def cancel(self, run_id: str, key: KeyRecord, what: str) -> DoorRun:
        """Cancel a queued or running run (nothing charged); a finished one is a 409."""
        record = await self._record(run_id, key, what)
        try:
            await self.jobs.cancel(record.id, key)
        except InvalidRequest as refused:
            if refused.status_code != 409:
                raise
            raise InvalidRequest(f"{what} already finished", status_code=409, code="already_finished") from refused
        return DoorRun.of(record, await self.jobs.book.end(record.id))

    async def _record(self, run_id: str, key: KeyRecord, what: str) -> JobRecord:
        try:
            record = await self.jobs.owned(run_id, key)
        except NotFound:
            record = None
        if record is None or record.door is None or record.door.get("name") != self.door:
            raise NotFound(f"{what} {run_id[:128]} not found", param="id")
        return record


async def serve_now(request: AnyRequest, gateway: Gateway, key: KeyRecord, image_request: ImageRequest
                    ) -> ImagesResponse:
    """Generate before answering (a vendor whose API answers with the image): billed once, as any
    request; a client that hangs up cancels it uncharged; ``Idempotency-Key`` replays; the
    router headers are read as generations read them."""
    return await unless_disconnected(request, gateway.generate(
        image_request, base_url=gateway.links.for_request(request), key=key,
        idempotency_key=request.headers.get("idempotency-key"), routing=RoutingChoice.from_headers(request.headers),
    ))


def _fingerprint(origin: dict[str, Any], asked: RoutingChoice) -> str:
    """What a door's create asked for: the door, its fields as the client sent them, and what it
    asked of the router."""
    return fingerprint({"door": origin}, asked)


def iso_time(epoch: float | None) -> str | None:
    """RFC 3339 in UTC, as the vendors write their timestamps; None stays None."""
    if epoch is None:
        return None
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
