"""Each vendor's own examples, kept as its public documentation shows them.

``contracts/<vendor>/*.json`` holds one example each: a request, an answer, a job status, an
error. Every file names where it comes from (``source``: the documentation page and section, or
the official SDK file) and what the adapter must make of it (``expect``). The adapter tests
parse every example; the simulator tests check that a simulator answers only in these shapes.

Roles: ``request`` (what the vendor takes; ``optional`` lists documented fields the example
leaves out), ``create`` (a job vendor's create answer; ``expect`` is the job id), ``poll`` (a
job's state; ``expect`` its phase, or ``shape`` for a reference example with placeholder
values), ``statuses`` (the documented status table), ``output`` (a job output shape; ``expect``
its URLs), ``answer`` (a synchronous answer), ``cancel``, ``error`` (``expect`` is the
``core.errors`` class the status ladder must give) and ``retries`` (what the docs say about
retrying a create: ``body`` lists their statements, ``expect`` the spec's ``idempotency_header``
and ``create_not_started``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class ContractExample:
    vendor: str
    name: str
    source: str
    role: str
    body: Any = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect: Any = None
    opaque: tuple[str, ...] = ()
    """Paths whose contents the documentation leaves open (a prediction's ``input``)."""
    optional: tuple[str, ...] = ()
    billed: bool | None = None
    statuses: dict[str, str] = field(default_factory=dict)


@cache
def examples(vendor: str) -> tuple[ContractExample, ...]:
    """Every documented example of ``vendor`` (none when its folder is missing)."""
    folder = ROOT / vendor
    found = []
    for path in sorted(folder.glob("*.json")):
        data = orjson.loads(path.read_bytes())
        found.append(ContractExample(
            vendor=vendor, name=path.stem, source=data["source"], role=data["role"], body=data.get("body"),
            status=data.get("status"), headers=data.get("headers", {}), expect=data.get("expect"),
            opaque=tuple(data.get("opaque", ())), optional=tuple(data.get("optional", ())),
            billed=data.get("billed"), statuses=data.get("statuses", {}),
        ))
    return tuple(found)


def shape(body: Any, opaque: tuple[str, ...] = (), prefix: str = "") -> frozenset[str]:
    """The key paths of a JSON value (``output.image_urls[]``), not descending into ``opaque``."""
    paths: set[str] = set()
    if isinstance(body, dict):
        for key, value in body.items():
            path = f"{prefix}{key}"
            paths.add(path)
            if path not in opaque:
                paths |= shape(value, opaque, f"{path}.")
    elif isinstance(body, list):
        for item in body:
            paths |= shape(item, opaque, f"{prefix.rstrip('.')}[].")
    return frozenset(paths)
