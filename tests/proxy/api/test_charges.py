"""``GET /v1/admin/charges``: what it documents is what it answers, ``since`` is read in exactly
the two forms the document states, and a log longer than a page comes in pages, each charge on
exactly one of them."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import InvalidRequest
from pricing.charge_log import ChargeRecord
from proxy.api.charges import parse_since
from proxy.api.schemas import Charge, ChargeList
from tests.proxy.api.served_app import Client, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.state_clock import freeze_ledger_time

ADMIN = {"Authorization": "Bearer admin-secret"}
BODY = {"prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"}
SERVED = 12


@pytest.fixture(params=["sqlite", "memory"])
async def charged(request: pytest.FixtureRequest, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Client, list[str]]]:
    """A gateway that served ``SERVED`` images, all charged at one instant, and the charges'
    request ids (each a reservation's own) in the order logged, read in one page."""
    freeze_ledger_time(monkeypatch)
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret",
                       state_backend=request.param, data_dir=tmp_path) as client:
        key = (await client.post("/v1/admin/keys", json={"name": "team"}, headers=ADMIN)).json()["key"]
        for _ in range(SERVED):
            served = await client.post("/v1/images/generations", json=BODY, headers={"Authorization": f"Bearer {key}"})
            assert served.status_code == 200
        whole = (await client.get("/v1/admin/charges", params={"since": "2000-01-01"}, headers=ADMIN)).json()
        request_ids = [charge["request_id"] for charge in whole["data"]]
        assert len(set(request_ids)) == SERVED
        yield client, request_ids


async def test_a_log_longer_than_a_page_comes_in_pages_each_charge_on_exactly_one(
        charged: tuple[Client, list[str]]) -> None:
    client, request_ids = charged
    pages, params = [], {"since": "2000-01-01", "limit": "5"}
    while True:
        answer = await client.get("/v1/admin/charges", params=params, headers=ADMIN)
        assert answer.status_code == 200
        page = ChargeList.model_validate(answer.json())
        pages.append(page)
        assert answer.headers["x-boltgate-has-more"] == str(page.has_more).lower()
        assert answer.headers.get("x-boltgate-next-after") == page.next_after
        if not page.has_more:
            break
        assert page.next_after is not None
        params = {**params, "after": page.next_after}

    assert [(len(page.data), page.has_more) for page in pages] == [(5, True), (5, True), (2, False)]
    assert [charge.request_id for page in pages for charge in page.data] == request_ids
    assert len({charge.at for page in pages for charge in page.data}) == 1
    after_last = await client.get("/v1/admin/charges", params={**params, "after": pages[-1].next_after},
                                  headers=ADMIN)
    assert after_last.json() == {"object": "list", "data": [], "has_more": False, "next_after": pages[-1].next_after}


async def test_the_csv_pages_the_same_way_with_its_cursor_in_headers(charged: tuple[Client, list[str]]) -> None:
    client, request_ids = charged
    rows: list[dict[str, str]] = []
    params = {"since": "2000-01-01", "limit": "7", "format": "csv"}
    while True:
        answer = await client.get("/v1/admin/charges", params=params, headers=ADMIN)
        assert answer.headers["content-type"].startswith("text/csv")
        rows += csv.DictReader(io.StringIO(answer.text))
        if answer.headers["x-boltgate-has-more"] == "false":
            break
        params = {**params, "after": answer.headers["x-boltgate-next-after"]}
    assert [row["request_id"] for row in rows] == request_ids


async def test_without_a_limit_a_page_holds_up_to_a_thousand(charged: tuple[Client, list[str]]) -> None:
    client, _ = charged
    page = (await client.get("/v1/admin/charges", params={"since": "2000-01-01"}, headers=ADMIN)).json()
    assert (len(page["data"]), page["has_more"]) == (SERVED, False)


@pytest.mark.parametrize(("params", "param"), [
    ({"limit": "0"}, "limit"), ({"limit": "10001"}, "limit"), ({"limit": "many"}, "limit"),
    ({"after": "not-a-position"}, "after"), ({"after": ""}, "after"), ({"after": "1-2-3"}, "after"),
])
async def test_a_limit_out_of_range_or_an_unknown_cursor_is_a_400_naming_it(
        params: dict[str, str], param: str) -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        answer = await client.get("/v1/admin/charges", params=params, headers=ADMIN)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


def test_a_logged_charge_is_what_the_document_says() -> None:
    record = ChargeRecord(key_id="k", request_id="r", vendor="eachlabs", region="us", vendor_request_id=None,
                          images=2, run_seconds=Decimal("1.5"), catalog_cost_usd=Decimal("0.00231"),
                          vendor_reported_cost_usd=None, client_usd=Decimal("0.003119"),
                          at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC))

    listed = ChargeList.model_validate({"object": "list", "data": [record.to_json()], "has_more": False,
                                        "next_after": "1"})

    assert listed.data == [Charge.model_validate(record.to_json())]
    assert set(Charge.model_fields) == set(record.to_json())


@pytest.mark.parametrize(("raw", "meant"), [
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T08:30:00Z", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
    ("2026-11-01t08:30:00.25+01:00", datetime(2026, 11, 1, 7, 30, 0, 250000, tzinfo=UTC)),
])
def test_since_is_an_rfc_3339_date_or_date_time(raw: str, meant: datetime) -> None:
    assert parse_since(raw) == meant


@pytest.mark.parametrize("raw", ["2026-02-30", "2026-11-01T08:30", "20261101", "last week", "2026-11-01 08:30:00Z",
                                 "2026-11-01T25:00:00Z"])
def test_any_other_since_is_a_400_naming_it(raw: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_since(raw)
    assert refused.value.param == "since"


def test_no_since_is_the_start_of_this_month() -> None:
    start = parse_since(None)
    assert (start.day, start.hour, start.minute, start.tzinfo) == (1, 0, 0, UTC)
