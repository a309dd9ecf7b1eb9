"""Fixtures for the simulators: one real loopback server per test module, reset between tests.

A test module names its vendor in ``VENDOR``; ``sim`` is that server with no faults, an empty
request log and default timing, so tests stay independent while paying start-up once.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from backends.simulators import SimulatorConfig, SimulatorServer

QUEUED_S = RUNNING_S = 0.05
"""Short job states: a lifecycle takes 100 ms."""
OBSERVABLE_S = 0.5
"""Long enough that a poll lands in each state even when one poll takes a few hundred ms on a
loaded 2-core machine (0.15 s was missed in CI-like load)."""

OpenImage = Callable[[bytes], Image.Image]
WaitFor = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def module_simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorServer]:
    vendor = getattr(request.module, "VENDOR", "callmissed")
    with SimulatorServer(vendor, SimulatorConfig(queued_s=QUEUED_S, running_s=RUNNING_S)) as server:
        yield server


@pytest.fixture
def sim(module_simulator: SimulatorServer) -> Iterator[SimulatorServer]:
    pristine = dataclasses.replace(module_simulator.config)
    module_simulator.clear_faults()
    module_simulator.clear_requests()
    module_simulator.clear_jobs()
    yield module_simulator
    module_simulator.clear_faults()
    for field in dataclasses.fields(pristine):
        setattr(module_simulator.config, field.name, getattr(pristine, field.name))
    module_simulator.accept_connections()


@pytest.fixture
def slow_jobs(sim: SimulatorServer) -> SimulatorServer:
    """Job states long enough that polling sees every one even on a loaded 2-core machine."""
    sim.config.queued_s = sim.config.running_s = OBSERVABLE_S
    return sim


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


@pytest.fixture
def bearer(sim: SimulatorServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


@pytest.fixture(scope="session")
def open_image() -> OpenImage:
    def open_(data: bytes) -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    return open_


@pytest.fixture
def wait_for(client: httpx.Client) -> WaitFor:
    """Poll a job URL until ``done(body)`` holds; returns the body and the states seen on the way."""

    def wait(
        url: str, done: Callable[[dict[str, Any]], bool], *, headers: dict[str, str], key: str, timeout_s: float = 5.0
    ) -> dict[str, Any]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while True:
            body: dict[str, Any] = client.get(url, headers=headers).raise_for_status().json()
            if not seen or seen[-1] != body[key]:
                seen.append(body[key])
            if done(body):
                return {**body, "_seen": seen}
            if time.monotonic() > deadline:
                raise AssertionError(f"still not done after {timeout_s} s; states seen: {seen}")
            time.sleep(0.005)

    return wait
