"""Jobs across a graceful restart of the app (its lifespan stopped and started again).

SQLite state keeps job records and the unacknowledged ids: ``GET`` answers after the restart,
queued jobs run then, and a job still running at the stop (past ``stop_grace_s``) ends
``failed`` with code ``gateway_stopped``, its credits released. Killed outright instead (no
lifespan), see ``tests/e2e/test_jobs_restart.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, Cancellable, finished, spent, status_becomes
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.redis_server import RedisServer


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    if request.param == "sqlite":
        yield {"state_backend": "sqlite"}
        return
    with RedisServer() as url:
        yield {"state_backend": "redis", "redis_url": url, "jobs": {"stop_grace_s": 0, "reclaim_idle_s": 0.3}}


async def test_queued_jobs_run_after_a_restart_and_a_stopped_run_fails_uncharged(state: dict[str, object]) -> None:
    jobs = {"concurrency": 1, "stop_grace_s": 0, "reclaim_idle_s": 0.3}
    settings = {**state, "jobs": jobs}
    async with serving([route_to(Cancellable("runflow"))], api_keys=KEYS, **settings) as client:
        running = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        queued = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        await status_becomes(client, running["id"], "running")

    served = ScriptedBackend("runflow")
    async with serving([route_to(served)], api_keys=KEYS, **settings) as client:
        stopped = await finished(client, running["id"])
        ran = await finished(client, queued["id"])
        charged, held = await spent(client)

    assert stopped["status"] == "failed"
    assert stopped["error"]["code"] == "gateway_stopped"
    assert ran["status"] == "succeeded"
    assert len(served.calls) == 1  # the stopped job is not run again
    assert (charged, held) == (Decimal(ran["billing"]["cost_usd"]), 0)
