"""``boltgate voids``: the voids owed that no running gateway will make, listed and made by hand.

A void is owed when a request was answered 503 after its charge went unconfirmed (the state store
did not answer: ``proxy.unconfirmed_charges``). The gateway makes it once the store answers, and
the next start on the same data directory makes what a killed process owed (``proxy.owed_voids``).
Two cases are left to an operator, and this command is their tool:

- **The data directory is gone** (a pod deleted while the store was down, its ``emptyDir`` with
  it). Every void owed was logged, each record carrying the journal's own line for it in its
  ``owed_void`` field. ``boltgate voids make FILE`` reads those records back from the logs, in
  either log format (or the journal's lines themselves) and makes the voids; other lines are
  passed over, so a whole log can be fed.
- **A directory no gateway will start on again** (a replica scaled away, a volume moved).
  ``boltgate voids make`` without a file takes over the files of processes that are gone there,
  as a start would, and removes each once all it owed is made.

Losses are owed the same way (``proxy.owed_losses``: vendor cost the store did not book): a gone
process's file may owe them, and each is logged with its journal line in the ``owed_loss`` field;
``boltgate voids make`` books them with the voids, from the directory or the logs, each once (by
its ledger event id: ``booked before`` when fed again), and ``boltgate voids list`` lists them.

``boltgate voids list`` shows what is owed under the data directory, by a running process or a gone
one, and changes nothing.

Feeding a void twice is harmless: ``Billing.void`` is idempotent (a charge already taken back is
left as it is: ``unchanged``) and books the vendor's cost as the gateway's loss once per request.
A void the store does not answer is reported, and the command exits 1 with nothing lost: the
lines are still in the log, the files still in the directory.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from core.errors import BoltgateError
from proxy.billing import Billing, PendingCharge
from proxy.owed_losses import OWE_LOSS, OWED_LOSS_FIELD, OwedLoss
from proxy.owed_voids import (
    OWED_VOID_FIELD,
    OWED_VOIDS_DIRECTORY,
    OwedEntries,
    OwedFile,
    OwedVoidsJournal,
    owed_entries,
)
from proxy.settings import Settings
from proxy.wiring import build_stores

LINE_FIELDS = (OWED_VOID_FIELD, OWED_LOSS_FIELD)
"""The log records' fields that carry a journal line: a void owed, a loss owed."""
HUMAN_FIELDS = tuple(f" {name}=".encode() for name in LINE_FIELDS)
"""How the human log format writes them (``key=value``, the value quoted as Python would)."""


@dataclass(frozen=True, slots=True)
class Made:
    """What became of one void (``outcome``: ``Voided``'s value) or one loss (``booked``, or
    ``booked before``): ``outcome`` None when the store did not answer (``problem``)."""

    owed: PendingCharge | OwedLoss
    outcome: str | None
    problem: str = ""

    @property
    def made(self) -> bool:
        return self.outcome is not None

    def describe(self) -> str:
        named = loss_named(self.owed) if isinstance(self.owed, OwedLoss) else void_named(self.owed)
        return f"{named}: {self.outcome if self.outcome is not None else f'NOT MADE: {self.problem}'}"


def loss_named(loss: OwedLoss) -> str:
    """How the command names a loss owed: its ledger event id, vendor, amount and day."""
    return f"loss {loss.event_id} ({loss.usd} USD to {loss.vendor} on {loss.day})"


def void_named(pending: PendingCharge) -> str:
    """How the command names a void: the request (the charge log's ``request_id``), key, amount."""
    settlement = pending.settlement
    return (f"request {settlement.reservation.reservation_id} (key {settlement.reservation.api_key}, "
            f"{settlement.micro_usd} micro-USD)")


def journal_lines(lines: Iterable[bytes]) -> list[bytes]:
    """The journal lines in ``lines``: the journal's own, or the ``owed_void`` or ``owed_loss``
    field of a log record in the JSON or the human format; every other line passed over."""
    found: list[bytes] = []
    for raw in lines:
        line = raw.strip()
        if line.startswith(b"{"):
            try:
                parsed = orjson.loads(line)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                if "owe" in parsed or OWE_LOSS in parsed or "paid" in parsed:
                    found.append(line)
                found += [parsed[name].encode() for name in LINE_FIELDS if isinstance(parsed.get(name), str)]
                continue
        for field in HUMAN_FIELDS:
            at = line.find(field)
            if at >= 0:
                found.append(_human_value(line[at + len(field):]))
    return found


def _human_value(text: bytes) -> bytes:
    """The field's value as the human format wrote it: quoted (``repr``) when it holds quotes,
    as a journal line always does; the rest of the line, since the field comes last."""
    try:
        value = ast.literal_eval(text.decode())
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        return text  # not quoted, or cut short: read as it is, and refused with the line's number if bad
    return value.encode() if isinstance(value, str) else text


def owed_from_logs(lines: Iterable[bytes], origin: str) -> OwedEntries:
    """The voids and losses owed that ``lines`` (logs, or a journal file) name, each once."""
    return owed_entries(journal_lines(lines), origin=origin)


def owed_files(settings: Settings) -> list[OwedFile]:
    refuse_memory(settings)
    return OwedVoidsJournal(settings.data_dir / OWED_VOIDS_DIRECTORY).owed_here()


async def make_voids(settings: Settings, owed: list[PendingCharge], losses: list[OwedLoss] | None = None) -> list[Made]:
    """Make each void in ``owed``, then book each loss in ``losses``, in the state store
    ``settings`` name, in order. A void whose loss the store does not book fails with it (this
    billing owes nothing to anyone: it raises), so it is left owed and fed again."""
    refuse_memory(settings)
    stores = build_stores(settings)
    made: list[Made] = []
    try:
        billing = Billing(stores.book, stores.durable, settings.pricing, {}, require_key=False)
        everything: list[PendingCharge | OwedLoss] = [*owed, *(losses or [])]
        for one in everything:
            try:
                if isinstance(one, OwedLoss):
                    made.append(Made(one, "booked" if await billing.book_loss(one) else "booked before"))
                else:
                    made.append(Made(one, (await billing.void(one)).value))
            except BoltgateError as error:  # StateUnavailable, most likely: the store still down
                made.append(Made(one, None, error.message))
            except Exception as error:  # whatever else: reported with the rest, never the others left unmade
                made.append(Made(one, None, f"{type(error).__name__}: {error}"))
    finally:
        await stores.aclose()
    return made


def made_summary(made: list[Made]) -> str:
    """The command's last line: how many voids were made and not, and losses booked and not."""
    if not made:
        return "no void owed found"
    voids = [one for one in made if not isinstance(one.owed, OwedLoss)]
    losses = [one for one in made if isinstance(one.owed, OwedLoss)]
    left, unbooked = sum(not one.made for one in voids), sum(not one.made for one in losses)
    summary = f"{len(voids) - left} voids made, {left} not made"
    return summary + (f"; {len(losses) - unbooked} losses booked, {unbooked} not booked" if losses else "")


async def make_gone_processes_voids(settings: Settings) -> list[Made]:
    """Take over the files of gone processes under the data directory, make their voids and book
    their losses, and remove the files once every one is made (else leave them, for a start or
    another try)."""
    refuse_memory(settings)
    journal = OwedVoidsJournal(settings.data_dir / OWED_VOIDS_DIRECTORY)
    inherited = journal.inherit()
    try:
        made = await make_voids(settings, inherited.owed, inherited.losses)
    except BaseException:
        journal.let_go(inherited)
        raise
    if all(one.made for one in made):
        journal.forget(inherited)
    else:
        journal.let_go(inherited)
    return made


def refuse_memory(settings: Settings) -> None:
    """``ValueError`` on the memory store, before anything is read."""
    if settings.state_backend == "memory":
        raise ValueError("state_backend=memory: its charges, and the voids it owes, live and die with the "
                         "serving process; there is nothing to make from outside it")
