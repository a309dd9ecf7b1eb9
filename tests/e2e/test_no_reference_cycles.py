"""A served request leaves nothing for the garbage collector: everything it made is freed by
reference counting when it ends.

The gateway collects young objects rarely (``tune_garbage_collector``: every 50,000), so each
reference cycle a request leaves is kept until then, and the collection that frees them walks
all of it: before this was checked, about 37 objects per request (uvicorn's cycle with its scope
and headers, the lean client's head parser), collections of 43,000 objects taking 25-40 ms, and
some 20-28 us of CPU per request (issue 17).
"""

from __future__ import annotations

import collections
import gc
import http.client
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from tests.collector import collector_off
from tests.e2e.conftest import StartGateway, StartSimulator, route_to

OURS = ("proxy.", "backends.", "core.", "pricing.", "uvicorn.", "litestar.", "httptools.")
"""Where a left-over object would come from: the gateway and the server it runs in (the test's
own client is left out: it is not the gateway)."""


@pytest.fixture
def cycles_kept() -> Iterator[list[object]]:
    """Objects found unreachable from here on (``gc.garbage`` with ``DEBUG_SAVEALL``), the
    collector idle meanwhile; read it after ``gc.collect()``."""
    gc.collect()
    with collector_off():
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.garbage.clear()
        try:
            yield gc.garbage
        finally:
            gc.set_debug(0)
            gc.garbage.clear()


def post(base_url: str, body: dict[str, object]) -> int:
    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)
    try:
        connection.request("POST", "/v1/images/generations", orjson.dumps(body),
                           {"content-type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
def test_served_images_leave_no_reference_cycle_in_the_gateway(
        simulator: StartSimulator, gateway: StartGateway, tmp_path: Path, response_format: str,
        request: pytest.FixtureRequest) -> None:
    served = gateway(route_to(simulator("callmissed")), state_backend="sqlite", data_dir=tmp_path)
    body = {"prompt": "a lighthouse at dusk", "size": "256x256", "response_format": response_format}
    assert post(served.base_url, body) == 200  # first uses: pools, caches, lazy imports
    kept: list[object] = request.getfixturevalue("cycles_kept")

    for _ in range(20):
        assert post(served.base_url, body) == 200
    gc.collect()

    ours = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in kept
                               if type(o).__module__.startswith(OURS))
    assert not ours, f"objects left to the garbage collector by 20 requests: {ours.most_common(10)}"
