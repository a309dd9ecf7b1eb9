"""Reconciliation: every charge is in the charge log with what an operator needs to check a
vendor's invoice, readable from the admin API and from ``boltgate usage export``; a vendor
whose reported cost strays from the catalog is counted."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from backends.simulators import Fault
from proxy.cli import main
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a paper boat", "size": "256x256", "response_format": "b64_json"}
ADMIN = {"Authorization": "Bearer adm"}


def mismatches(base_url: str, vendor: str) -> float:
    text = httpx.get(f"{base_url}/metrics").text
    found = re.search(rf'^boltgate_vendor_cost_mismatch_total{{backend="{vendor}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_each_charge_is_logged_with_the_vendors_id_and_both_costs(
    simulator: StartSimulator, gateway: StartGateway, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    runflow = simulator("runflow")  # reports the catalog's price
    eachlabs = simulator("eachlabs", running_s=0.2, eachlabs_usd_per_second=Decimal("0.002"))  # not the catalog's
    data_dir = tmp_path / "ledger"
    server = gateway(route_to(runflow, priority=1, max_attempts=1), route_to(eachlabs, priority=2),
                     admin_token="adm", require_api_key=False, data_dir=data_dir)
    eachlabs_mismatches, runflow_mismatches = mismatches(server.base_url, "eachlabs"), mismatches(server.base_url,
                                                                                                  "runflow")
    served = [httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)]
    runflow.inject(Fault(kind="status", status=500, times=None))
    served.append(httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30))
    assert [answer.status_code for answer in served] == [200, 200], [answer.text for answer in served]
    assert [answer.headers["x-boltgate-backend"] for answer in served] == ["runflow", "eachlabs"]

    logged = httpx.get(f"{server.base_url}/v1/admin/charges", params={"since": "2000-01-01"}, headers=ADMIN).json()
    rows = logged["data"]
    assert [row["vendor"] for row in rows] == ["runflow", "eachlabs"]
    for row, answer in zip(rows, served, strict=True):
        assert row["vendor_request_id"] == answer.headers["x-boltgate-vendor-request-id"]
        assert row["client_usd"] == answer.headers["x-boltgate-cost-usd"]
        assert row["catalog_cost_usd"] == answer.headers["x-boltgate-upstream-cost-usd"]
        reported = answer.headers["x-boltgate-vendor-reported-cost-usd"]
        assert Decimal(row["vendor_reported_cost_usd"]) == Decimal(reported)
        assert row["key_id"] == "anonymous" and row["images"] == 1 and row["at"].startswith("20")
    assert Decimal(rows[1]["run_seconds"]) == Decimal(served[1].headers["x-boltgate-run-seconds"])
    assert mismatches(server.base_url, "eachlabs") == eachlabs_mismatches + 1  # $0.002/s against $0.00154/s
    assert mismatches(server.base_url, "runflow") == runflow_mismatches

    as_csv = httpx.get(f"{server.base_url}/v1/admin/charges", params={"since": "2000-01-01", "format": "csv"},
                       headers=ADMIN)
    assert as_csv.headers["content-type"].startswith("text/csv")
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(data_dir))
    assert main(["usage", "export", "--since", "2000-01-01", "--format", "csv"]) == 0
    exported = capsys.readouterr().out
    assert exported == as_csv.text
    table = list(csv.DictReader(io.StringIO(exported)))
    assert [row["vendor_request_id"] for row in table] == [row["vendor_request_id"] for row in rows]


def test_the_charge_log_needs_the_admin_token_and_a_valid_date(simulator: StartSimulator,
                                                                gateway: StartGateway) -> None:
    server = gateway(route_to(simulator("runflow")), admin_token="adm")
    assert httpx.get(f"{server.base_url}/v1/admin/charges").status_code == 401
    refused = httpx.get(f"{server.base_url}/v1/admin/charges", params={"since": "last week"}, headers=ADMIN)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "since"
    assert httpx.get(f"{server.base_url}/v1/admin/charges", headers=ADMIN).json() == {
        "object": "list", "data": [], "has_more": False, "next_after": None}
