"""A SimulatedVendor routes, authenticates and shapes errors as its vendor does."""

from __future__ import annotations

import orjson
import pytest

from backends.simulators.faults import Fault
from backends.simulators.protocol import SimError
from backends.simulators.vendors import SPECS


def test_bearer_auth_wants_the_key_with_any_case_of_scheme() -> None:
    spec = SPECS["callmissed"]

    assert spec.authorized({"authorization": "Bearer k"}, "k")
    assert spec.authorized({"authorization": "bearer k"}, "k")
    assert not spec.authorized({"authorization": "Bearer other"}, "k")
    assert not spec.authorized({"x-api-key": "k"}, "k")


def test_eachlabs_auth_takes_bearer_and_the_older_x_api_key() -> None:
    spec = SPECS["eachlabs"]

    assert spec.authorized({"x-api-key": "k"}, "k")
    assert spec.authorized({"authorization": "Bearer k"}, "k")
    assert not spec.authorized({"authorization": "Bearer other"}, "k")
    assert not spec.authorized({"x-api-key": "other"}, "k")


def test_routes_match_method_and_whole_path_and_capture_ids() -> None:
    spec = SPECS["runflow"]

    found = spec.match("GET", "/v1/runs/run_1")
    assert found is not None and found[1] == {"run_id": "run_1"}
    assert spec.match("POST", "/v1/runs/run_1") is None
    assert spec.match("GET", "/v1/runs/run_1/extra") is None
    assert spec.match("POST", "/v1/models/bytedance/sd-xl-lightning/runs")[0].creates_output  # type: ignore[index]


def test_an_error_response_uses_the_vendors_envelope_and_status_headers() -> None:
    response = SPECS["aigateway"].error_response(SimError(429, headers={"X-Extra": "1"}))

    assert response.status == 429
    assert orjson.loads(response.body)["error"]["type"] == "rate_limit_error"
    assert response.headers == {"Retry-After": "1", "X-Extra": "1"}


def test_only_job_vendors_take_job_faults() -> None:
    SPECS["runflow"].check_fault(Fault("fail_midway"))
    SPECS["eachlabs"].check_fault(Fault("stuck_queued"))
    for vendor in ("callmissed", "imageapi", "aigateway"):
        with pytest.raises(ValueError):
            SPECS[vendor].check_fault(Fault("fail_midway"))
