"""``GET /v1/admin/charges``: what it documents is what it answers, and ``since`` is read in
exactly the two forms the document states."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.errors import InvalidRequest
from pricing.charge_log import ChargeRecord
from proxy.api.charges import parse_since
from proxy.api.schemas import Charge, ChargeList


def test_a_logged_charge_is_what_the_document_says() -> None:
    record = ChargeRecord(key_id="k", request_id="r", vendor="eachlabs", region="us", vendor_request_id=None,
                          images=2, run_seconds=Decimal("1.5"), catalog_cost_usd=Decimal("0.00231"),
                          vendor_reported_cost_usd=None, client_usd=Decimal("0.003119"),
                          at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC))

    listed = ChargeList.model_validate({"object": "list", "data": [record.to_json()]})

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
