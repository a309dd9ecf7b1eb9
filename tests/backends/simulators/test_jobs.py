"""A job's state follows from its age and timing; faults fix its fate at creation."""

from __future__ import annotations

import time

import pytest

from backends.simulators.jobs import Fate, Job, JobPhase, JobStore, JobTiming

TIMING = JobTiming(queued_s=1.0, dispatching_s=0.5, running_s=2.0)


def job_aged(seconds: float, fate: Fate = "succeed") -> Job:
    job = Job(id="j", input={}, outputs=("/a.png",), timing=TIMING, fate=fate)
    job.created_mono = time.monotonic() - seconds
    return job


@pytest.mark.parametrize(
    ("age", "phase"),
    [(0.5, JobPhase.QUEUED), (1.2, JobPhase.DISPATCHING), (2.0, JobPhase.RUNNING), (3.6, JobPhase.SUCCEEDED)],
)
def test_a_job_moves_through_its_phases_with_time(age, phase) -> None:
    assert job_aged(age).phase() is phase


def test_run_seconds_grow_while_running_and_stop_at_the_running_time() -> None:
    assert job_aged(0.5).run_seconds() == 0.0
    assert job_aged(2.5).run_seconds() == pytest.approx(1.0, abs=0.01)
    assert job_aged(10).run_seconds() == 2.0


def test_a_stuck_job_stays_queued_and_never_runs() -> None:
    job = job_aged(100, fate="stuck")

    assert (job.phase(), job.run_seconds(), job.started()) == (JobPhase.QUEUED, 0.0, False)


def test_a_failing_job_runs_then_fails() -> None:
    assert job_aged(2.0, fate="fail").phase() is JobPhase.RUNNING
    assert job_aged(3.6, fate="fail").phase() is JobPhase.FAILED


def test_cancel_stops_a_live_job_and_freezes_its_run_time() -> None:
    job = job_aged(2.5)

    assert job.cancel() is True
    job.created_mono -= 10  # much later

    assert job.phase() is JobPhase.CANCELED
    assert job.run_seconds() == pytest.approx(1.0, abs=0.01)
    assert job.finished_after() == pytest.approx(2.5, abs=0.01)


def test_a_finished_job_cannot_be_canceled() -> None:
    job = job_aged(5)

    assert job.cancel() is False
    assert job.phase() is JobPhase.SUCCEEDED


def test_timestamps_are_iso_utc_offsets_from_creation() -> None:
    job = job_aged(5)
    job.created_wall = 0.0

    assert job.timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert job.timestamp(job.started_after()) == "1970-01-01T00:00:01.500Z"
    assert job.timestamp(job.finished_after()) == "1970-01-01T00:00:03.500Z"
    assert job_aged(0.1).timestamp(job_aged(0.1).started_after()) is None


def test_the_store_keeps_the_newest_jobs() -> None:
    store = JobStore(max_entries=2)
    for name in ("a", "b", "c"):
        store.add(Job(id=name, input={}, outputs=(), timing=TIMING))

    assert store.get("a") is None
    assert store.get("c") is not None
