"""A job's webhook is delivered outside the runner's concurrency: a receiver that holds the POST
open (or fails it, through every retry and backoff) delays that job's acknowledgement only,
never the jobs queued behind it, whoever submitted them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BOB, BODY, KEYS, finished
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


class SilentReceiver:
    """A webhook receiver on loopback that takes the connection and never answers."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.held: list[asyncio.StreamWriter] = []
        self.url = ""

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.held.append(writer)
        self.connected.set()

    async def __aenter__(self) -> SilentReceiver:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def hang_up(self) -> None:
        """The pending POSTs fail at once: the gateway's stop need not wait for them."""
        for writer in self.held:
            writer.close()
            await writer.wait_closed()

    async def __aexit__(self, *_: object) -> None:
        await self.hang_up()
        self._server.close()


@pytest.fixture
async def silent() -> AsyncIterator[SilentReceiver]:
    async with SilentReceiver() as receiver:
        yield receiver


async def test_a_webhook_receiver_that_never_answers_holds_up_no_other_job(silent: SilentReceiver) -> None:
    jobs = {"concurrency": 1, "webhook": {"allowed_hosts": ["127.0.0.1"], "timeout_s": 120, "max_attempts": 1}}
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, jobs=jobs) as client:
        hooked = (await client.post("/v1/images/jobs", json={**BODY, "webhook_url": silent.url},
                                    headers=ALICE)).json()
        async with asyncio.timeout(10):
            await silent.connected.wait()  # its run is over; its webhook's POST waits for an answer

        other = (await client.post("/v1/images/jobs", json=BODY, headers=BOB)).json()
        done = await finished(client, other["id"], BOB)  # fails on its timeout while the slot is held
        hooked_now = await finished(client, hooked["id"])
        await silent.hang_up()

    assert done["status"] == "succeeded"
    assert hooked_now["status"] == "succeeded" and "webhook" not in hooked_now  # still being delivered
