"""Bad input gets a clear 4xx in OpenAI's error envelope from the real server, never a 500,
and never reaches a vendor."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backends.simulators import SimulatorConfig, SimulatorServer
from proxy.settings import RegionConfig, RouteConfig, Settings
from tests.e2e.conftest import KEY_ENV, SIM_KEY, RunningServers
from tests.e2e.gateway_server import GatewayServer

Served = tuple[GatewayServer, SimulatorServer]

OK = {"model": "sdxl-lightning", "prompt": "a kite"}

CASES: list[tuple[str, bytes, int, str | None, str | None]] = [
    # (case, raw body, status, param, code)
    ("malformed json", b'{"prompt": "x",', 400, None, "invalid_json"),
    ("not an object", b'["a kite"]', 400, None, "invalid_request"),
    ("empty body", b"", 400, None, "invalid_json"),
    ("missing prompt", b'{"model": "sdxl-lightning"}', 400, "prompt", "invalid_request"),
    ("blank prompt", b'{"prompt": "   "}', 400, "prompt", "invalid_request"),
    ("prompt too long", b'{"prompt": "' + b"a" * 4001 + b'"}', 400, "prompt", "invalid_request"),
    ("prompt not a string", b'{"prompt": 42}', 400, "prompt", "invalid_request"),
    ("n zero", b'{"prompt": "x", "n": 0}', 400, "n", "invalid_request"),
    ("n too large", b'{"prompt": "x", "n": 5}', 400, "n", "invalid_request"),
    ("n not a number", b'{"prompt": "x", "n": "two"}', 400, "n", "invalid_request"),
    ("size malformed", b'{"prompt": "x", "size": "big"}', 400, "size", "invalid_request"),
    ("size too small", b'{"prompt": "x", "size": "128x128"}', 400, "size", "invalid_request"),
    ("size too large", b'{"prompt": "x", "size": "2048x2048"}', 400, "size", "invalid_request"),
    ("size not multiple of 8", b'{"prompt": "x", "size": "1001x1001"}', 400, "size", "invalid_request"),
    ("steps zero", b'{"prompt": "x", "steps": 0}', 400, "steps", "invalid_request"),
    ("steps too many", b'{"prompt": "x", "steps": 51}', 400, "steps", "invalid_request"),
    ("negative seed", b'{"prompt": "x", "seed": -1}', 400, "seed", "invalid_request"),
    ("seed too large", b'{"prompt": "x", "seed": 4294967296}', 400, "seed", "invalid_request"),
    ("negative guidance", b'{"prompt": "x", "guidance_scale": -1}', 400, "guidance_scale", "invalid_request"),
    ("bad response_format", b'{"prompt": "x", "response_format": "gif"}', 400, "response_format",
     "invalid_request"),
    ("bad output_format", b'{"prompt": "x", "output_format": "bmp"}', 400, "output_format", "invalid_request"),
    ("unknown field", b'{"prompt": "x", "colour": "red"}', 400, "colour", "unknown_parameter"),
    ("unknown model", b'{"prompt": "x", "model": "dall-e-3"}', 404, "model", "model_not_found"),
]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """One gateway for the whole table (the key variable is read when the gateway starts)."""
    running = RunningServers()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, SIM_KEY)
        sim = running.add(SimulatorServer("callmissed", SimulatorConfig(api_key=SIM_KEY)).start())
        route = RouteConfig(vendor="callmissed", key_env=KEY_ENV,
                            regions=[RegionConfig(name="r1", base_url=sim.base_url)])
        settings = Settings(routes=[route], simulators="off", max_body_bytes=64 * 1024,
                            probes={"enabled": False},  # counts vendor requests
                            state_backend="memory")  # module-wide: no per-test data dir
        server = running.add(GatewayServer(settings).start())
    yield server, sim
    running.stop_all()


@pytest.mark.parametrize(("case", "body", "status", "param", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_generation_request(served: Served, case: str, body: bytes, status: int, param: str | None,
                                code: str | None) -> None:
    server, sim = served
    before = len(sim.requests)
    response = httpx.post(f"{server.base_url}/v1/images/generations", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["code"] == code
    assert error["message"]
    assert len(sim.requests) == before  # nothing reached the vendor


def test_body_over_the_limit_is_413(served: Served) -> None:
    server, _ = served
    response = httpx.post(f"{server.base_url}/v1/images/generations",
                          content=b'{"prompt": "' + b"a" * 100_000 + b'"}',
                          headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_wrong_method_and_unknown_path_use_the_same_envelope(served: Served) -> None:
    server, _ = served
    wrong_method = httpx.get(f"{server.base_url}/v1/images/generations")
    unknown = httpx.post(f"{server.base_url}/v1/nope", json=OK)
    assert wrong_method.status_code == 405
    assert unknown.status_code == 404
    for response in (wrong_method, unknown):
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
