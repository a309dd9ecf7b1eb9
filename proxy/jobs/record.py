"""A job as stored: what the client asked, who owns it, the credits held, and how it ended."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson

from core.errors import BoltgateError
from pricing.ledger import Reservation

JobPhase = Literal["queued", "running"]
FinalStatus = Literal["succeeded", "failed", "cancelled"]
JOB_ID = re.compile(r"^job_[A-Za-z0-9_-]{22}$")


def new_job_id() -> str:
    return "job_" + secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class HeldCredits:
    """The reservation placed at submit, enough to rebuild it in any process (after a restart)."""

    reservation_id: str
    micro_usd: int
    limit: int | None
    budget_credits: str | None

    @classmethod
    def of(cls, reservation: Reservation) -> HeldCredits:
        budget = None if reservation.budget_credits is None else str(reservation.budget_credits)
        return cls(reservation.reservation_id, reservation.micro_usd, reservation.limit, budget)

    def reservation(self, key_id: str) -> Reservation:
        budget = None if self.budget_credits is None else Decimal(self.budget_credits)
        return Reservation(key_id, self.reservation_id, self.limit, budget, self.micro_usd)


@dataclass(slots=True)
class JobRecord:
    """Written at submit and when a run starts; never holds the outcome (``JobEnd`` does)."""

    id: str
    key_id: str
    body: dict[str, Any]
    """The generation body, validated at submit (``webhook_url`` taken out)."""
    base_url: str
    """Where the client called: the base of its image URLs (unless ``public_base_url`` is set)."""
    held: HeldCredits
    webhook_url: str | None = None
    phase: JobPhase = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    runs: int = 0
    """Runs started; a second one means the first was lost mid-run (the process died)."""
    door: dict[str, Any] | None = None
    """Set when the job came in by a vendor door (``proxy.doors``): the door's ``name``, the
    ``input`` as the client sent it and the ``extra`` fields the vendor echoes back."""
    route: str | None = None
    """The route it pinned at submit (``x-boltgate-route``: VENDOR or VENDOR/REGION), kept so a
    run after a restart is pinned too; None: the router chooses."""
    hedge: bool | None = None
    """Its ``x-boltgate-hedge`` at submit; None: the gateway's ``hedging.enabled``."""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> JobRecord:
        data = orjson.loads(raw)
        data["held"] = HeldCredits(**data["held"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class JobEnd:
    """How a job ended. Written once: whichever of finish, fail and cancel comes first wins."""

    status: FinalStatus
    finished: float = field(default_factory=time.time)
    result: dict[str, Any] | None = None
    """On success: the images, what they cost and how they were served."""
    error: dict[str, Any] | None = None
    """On failure: OpenAI's error object (``message``, ``type``, ``param``, ``code``)."""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> JobEnd:
        return cls(**orjson.loads(raw))


def error_object(error: BoltgateError) -> dict[str, Any]:
    """OpenAI's error object of ``error`` (the inside of its envelope), as a job's end keeps it."""
    inner = error.body()["error"]
    assert isinstance(inner, dict)
    return inner
