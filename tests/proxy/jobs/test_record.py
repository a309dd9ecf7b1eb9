"""Job ids are unguessable: ``job_`` and 128 random bits, the shape the API documents."""

from __future__ import annotations

import base64

from proxy.jobs.record import JOB_ID, new_job_id


def random_bits(job_id: str) -> int:
    token = job_id.removeprefix("job_")
    return len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8


def test_a_job_id_carries_128_random_bits_in_the_documented_shape() -> None:
    ids = [new_job_id() for _ in range(2000)]

    assert all(JOB_ID.match(job_id) for job_id in ids)
    assert {random_bits(job_id) for job_id in ids} == {128}
    assert len(set(ids)) == len(ids)


def test_no_two_ids_share_a_prefix_the_way_counters_or_clocks_would() -> None:
    prefixes = {new_job_id()[:10] for _ in range(200)}  # 6 characters, 36 bits, after job_
    assert len(prefixes) == 200
