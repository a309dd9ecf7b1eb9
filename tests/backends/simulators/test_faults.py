"""Faults: validated on creation, taken first-in first-out by the requests they match."""

from __future__ import annotations

import pytest

from backends.simulators.faults import Fault, FaultQueue


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "status", "status": 700},
        {"kind": "latency"},
        {"kind": "hang", "times": 0},
        {"kind": "hang", "path": "("},
    ],
)
def test_invalid_faults_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        Fault(**kwargs)


def test_from_json_checks_field_names_and_types() -> None:
    assert Fault.from_json({"kind": "status", "status": 503, "headers": {"Retry-After": "2"}}) == Fault(
        "status", status=503, headers={"Retry-After": "2"}
    )
    for bad in (
        {"kind": "hang", "when": 1},
        {"kind": "status", "status": "503"},
        {"kind": "hang", "times": True},
        {"kind": "status", "status": 429, "headers": {"Retry-After": 2}},
    ):
        with pytest.raises(ValueError):
            Fault.from_json(bad)


def test_faults_are_taken_in_order_each_for_its_times() -> None:
    queue = FaultQueue()
    queue.push(Fault("status", status=500, times=2), Fault("reset"))

    kinds = [getattr(queue.take("GET", "/", creates_output=False), "kind", None) for _ in range(4)]

    assert kinds == ["status", "status", "reset", None]


def test_a_fault_without_times_stays() -> None:
    queue = FaultQueue()
    queue.push(Fault("hang", times=None))

    assert all(queue.take("GET", "/", creates_output=False) is not None for _ in range(5))
    assert queue.pending() == [Fault("hang", times=None)]


def test_output_faults_wait_for_a_request_that_creates_output() -> None:
    queue = FaultQueue()
    queue.push(Fault("stuck_queued"), Fault("latency", seconds=1))

    poll = queue.take("GET", "/v1/runs/1", creates_output=False)
    create = queue.take("POST", "/v1/models/a/b/runs", creates_output=True)

    assert (poll and poll.kind, create and create.kind) == ("latency", "stuck_queued")


def test_method_and_path_narrow_a_fault() -> None:
    queue = FaultQueue()
    queue.push(Fault("status", status=500, method="get", path=r"^/v1/runs/"))

    assert queue.take("POST", "/v1/runs/1", creates_output=False) is None
    assert queue.take("GET", "/v1/models/x", creates_output=False) is None
    assert queue.take("GET", "/v1/runs/1", creates_output=False) is not None


def test_clear_empties_the_queue() -> None:
    queue = FaultQueue()
    queue.push(Fault("reset"))

    queue.clear()

    assert queue.take("GET", "/", creates_output=True) is None
