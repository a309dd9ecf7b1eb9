"""The /_sim/ admin API drives a simulator from outside the process, as benchmarks do."""

from __future__ import annotations

VENDOR = "runflow"
CREATE = "/v1/models/bytedance/sd-xl-lightning/runs"
BODY = {"input": {"prompt": "a windmill", "seed": 1, "width": 256, "height": 256}}


def test_a_pushed_fault_applies_to_the_next_request(sim, client, bearer) -> None:
    pushed = client.post(sim.base_url + "/_sim/faults", json={"kind": "status", "status": 503})

    assert pushed.json() == {"queued": 1}
    response = client.post(sim.base_url + CREATE, headers=bearer, json=BODY)
    assert (response.status_code, response.json()["code"]) == (503, "MODEL_UNAVAILABLE")
    assert client.post(sim.base_url + CREATE, headers=bearer, json=BODY).status_code == 201


def test_faults_can_be_pushed_as_a_list_listed_and_cleared(sim, client) -> None:
    client.post(sim.base_url + "/_sim/faults", json=[{"kind": "stuck_queued"}, {"kind": "latency", "seconds": 1}])
    client.post(sim.base_url + "/_sim/faults", json={"faults": [{"kind": "reset", "times": None}]})

    listed = client.get(sim.base_url + "/_sim/faults").json()["faults"]
    assert [fault["kind"] for fault in listed] == ["stuck_queued", "latency", "reset"]
    client.delete(sim.base_url + "/_sim/faults")
    assert client.get(sim.base_url + "/_sim/faults").json() == {"faults": []}


def test_an_invalid_fault_is_refused_with_400(sim, client) -> None:
    for bad in (
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "latency", "seconds": "1"},
        {"kind": "hang", "color": "red"},
        "hang",
    ):
        response = client.post(sim.base_url + "/_sim/faults", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]
    assert sim.state.faults.pending() == []


def test_the_request_log_can_be_read_and_cleared(sim, client, bearer) -> None:
    client.post(sim.base_url + CREATE, headers=bearer, json=BODY)

    [entry] = client.get(sim.base_url + "/_sim/requests").json()["requests"]
    assert (entry["method"], entry["path"], entry["json"]) == ("POST", CREATE, BODY)
    assert entry["headers"]["authorization"] == bearer["Authorization"]
    client.delete(sim.base_url + "/_sim/requests")
    assert client.get(sim.base_url + "/_sim/requests").json() == {"requests": []}


def test_cancels_are_listed_and_none_exist_where_the_vendor_has_no_cancel(sim, client, bearer) -> None:
    run = client.post(sim.base_url + CREATE, headers=bearer, json=BODY).json()
    assert client.post(f"{sim.base_url}/v1/runs/{run['id']}/cancel", headers=bearer).status_code == 404

    assert client.get(sim.base_url + "/_sim/cancels").json() == {"cancels": []}


def test_billing_says_what_the_jobs_cost(sim, client, bearer) -> None:
    assert client.get(sim.base_url + "/_sim/billing").json() == {"billed_usd": "0"}


def test_health_names_the_vendor(sim, client) -> None:
    assert client.get(sim.base_url + "/_sim/health").json() == {"vendor": "runflow", "status": "ok"}
