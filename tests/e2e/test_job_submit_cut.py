"""A job submit cut off between writing the job and queueing it never leaves a job that never runs.

Found by ``test_random_kills`` (seed 202, Redis): the job's record was written, then the gateway
was killed before the record's id reached the queue (a Redis Stream). The record said ``queued``
for good, nothing would ever run it, and the client's retry under its ``Idempotency-Key`` was
answered that job, polled for ever. A cut connection to Redis at that moment leaves the same.
Here Redis is cut exactly at the queueing (``LossyProxy`` at ``XADD``, never passed on), and the
record and the queue entry must be one write: both, or neither.

The hold the submit placed before it could not be given back either (the store was cut off for
the clean-up too): it must come back within a request's lease, not keep the key's credits for
``jobs.queued_hold_s`` (an hour), the submit having queued nothing to run on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.e2e.lossy_proxy import LossyProxy
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

KEYED = {"Authorization": "Bearer bg-team", "Idempotency-Key": "kite-job-1"}
BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256"}
GUARD_S = 20.0
"""Far longer than a request's lease, far shorter than ``jobs.queued_hold_s``."""
DEADLINE_S = 3.0
GRACE_S = 1.0
QUEUEING = b"XADD\r\n$20\r\nboltgate:jobs:stream"
"""``XADD boltgate:jobs:stream ...`` as redis-py sends it (the ledger's scripts hold ``XADD`` too)."""


@pytest.fixture
def relay() -> Iterator[LossyProxy]:
    with RedisServer() as url:
        proxy = LossyProxy(int(url.rsplit(":", 1)[1].split("/")[0])).start()
        yield proxy
        proxy.stop()


def test_a_submit_cut_at_its_queueing_leaves_no_job_that_never_runs(
    relay: LossyProxy, simulator: StartSimulator, gateway: StartGateway
) -> None:
    server = gateway(route_to(simulator("aigateway")), state_backend="redis",
                     redis_url=f"redis://127.0.0.1:{relay.port}/0", state_timeout_s=0.5,
                     api_keys={"bg-team": {"name": "team"}}, jobs={"reclaim_idle_s": 1.0},
                     deadline_s=DEADLINE_S, reservation_grace_s=GRACE_S)
    relay.cut_at(QUEUEING, forwarded=False)
    cut = httpx.post(f"{server.base_url}/v1/images/jobs", json=BODY, headers=KEYED, timeout=30)
    assert relay.is_cut and cut.status_code == 503, cut.text
    relay.mend()

    assert held(server.base_url) > 0  # the clean-up could not give the hold back

    retried = httpx.post(f"{server.base_url}/v1/images/jobs", json=BODY, headers=KEYED, timeout=30)
    if retried.status_code != 409:  # 409: nothing was queued, the key is not answered a job
        assert retried.status_code in (200, 202), retried.text
        job_url = f"{server.base_url}/v1/images/jobs/{retried.json()['id']}"
        give_up = time.monotonic() + GUARD_S
        while (job := httpx.get(job_url, headers=KEYED, timeout=10).json())["status"] in ("queued", "running"):
            assert time.monotonic() < give_up, f"the job answered to the retry never ends: {job}"
            time.sleep(0.1)

    give_up = time.monotonic() + GUARD_S  # a request's lease is DEADLINE_S + GRACE_S
    while held(server.base_url) > 0:
        assert time.monotonic() < give_up, "the cut submit's hold still keeps the key's credits"
        time.sleep(0.1)


def held(base_url: str) -> Decimal:
    """What the key's live holds keep now."""
    return Decimal(httpx.get(f"{base_url}/v1/usage", headers=KEYED, timeout=10).json()["reserved_usd"])
