"""Who runs an ``Idempotency-Key``, and what a retry is told while the key has no answer kept.

A request under a key first claims it, in one write that keeps what the request asked
(its fingerprint) and, for a door's create, the id of the run it is about to queue. The claim
lasts as long as replays do (``REPLAY_TTL_S``) and is given up only by a request that charged
nothing and queued nothing. So whatever a request leaves behind after it was charged, the store
down when its answer was to be remembered or the process killed, the key never runs again: a
retry is refused, never served and charged a second time.

A retry that finds the key claimed and no answer kept is told, from the claim alone:

- another request under the key (another fingerprint): 409 ``idempotency_key_reused``;
- the claim is younger than the longest the request may take: 409, still in progress;
- older: 409 ``idempotent_answer_unavailable``, the request ended without its answer kept
  (it may have been charged), and a new key generates again. A job's submit (a door's create,
  ``POST /v1/images/jobs``) whose job exists answers that job instead (``proxy.jobs.submit_once``).

A claim's age is read from its TTL (what the store's own clock says is left), so replicas whose
clocks disagree still agree on it. Claims written before claims kept their request (``b"1"``)
read as in progress: they last only a request's deadline plus a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import orjson

from core.errors import IdempotencyConflict
from pricing.ledger import Ledger
from proxy.replays import REPLAY_TTL_S, refuse_another_request

CLAIM_GRACE_S = 60.0
"""How long past its deadline a request may still be answering (remembering its answer)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim keeps: the request's fingerprint, and the run a door's create queues."""

    fingerprint: str
    run: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps({"fingerprint": self.fingerprint, **({"run": self.run} if self.run else {})})

    @classmethod
    def from_json(cls, raw: bytes) -> Claim | None:
        """None for a claim written before claims kept their request."""
        if raw == b"1":
            return None
        stored = orjson.loads(raw)
        return cls(stored["fingerprint"], stored.get("run"))


@dataclass(frozen=True, slots=True)
class HeldClaim:
    """A claim taken by an earlier request, and how long ago."""

    claim: Claim | None
    age_s: float


async def claim(ledger: Ledger, api_key: str, slot: str, wanted: Claim) -> HeldClaim | None:
    """Claim ``slot`` for ``wanted``: None when this caller holds it now (for ``REPLAY_TTL_S``;
    release it only when nothing was charged or queued), else the claim an earlier request holds."""
    for _ in range(2):  # a claim given up between our two reads: claim it again, once
        if await ledger.claim_idempotency(api_key, slot, ttl=REPLAY_TTL_S, value=wanted.to_json()):
            return None
        held = await ledger.held_idempotency_claim(api_key, slot)
        if held is not None:
            raw, left_s = held
            return HeldClaim(Claim.from_json(raw), REPLAY_TTL_S - (REPLAY_TTL_S if left_s is None else left_s))
    return HeldClaim(None, 0.0)


def refuse_held(held: HeldClaim, fingerprint: str, running_s: float, *,
                unavailable: str = "") -> NoReturn:
    """The 409 for a retry that found ``held`` and no answer: another request, still in progress
    (younger than ``running_s``), or ended with no answer kept (``unavailable`` says why)."""
    if held.claim is not None:
        refuse_another_request({"fingerprint": held.claim.fingerprint}, fingerprint)
    if held.claim is None or held.age_s < running_s:
        raise IdempotencyConflict("A request with this Idempotency-Key is still in progress", param="Idempotency-Key")
    raise IdempotencyConflict(
        unavailable or "The first request with this Idempotency-Key ended, but its answer could not be kept; "
        "it may have been served and charged, so it is not run again under this key. "
        "Send a new Idempotency-Key to generate again", param="Idempotency-Key", code="idempotent_answer_unavailable")
