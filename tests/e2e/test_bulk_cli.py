"""``boltgate generate`` end to end: the real command against the real gateway on simulators,
over HTTP on loopback. What it says it spent is what the gateway charged the key; a rerun, a
retry after a lost answer, a deleted file never pay twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from backends.simulators import Fault, SimulatorServer
from proxy.bulk.output import MANIFEST_NAME
from proxy.bulk.summary import EXIT_ALL_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from proxy.cli import main
from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.e2e.gateway_server import GatewayServer
from tests.e2e.lossy_proxy import LossyProxy

KEY = "bg-bulk"
KEYS = {KEY: {"name": "bulk", "budget_credits": "1000"}}


BREAKER_OPEN_S = 1.0
"""An open circuit's Retry-After, which the command waits out before its retry: a second, not
the 30 s a production route stays out."""


@pytest.fixture
def served(simulator: StartSimulator, gateway: StartGateway) -> tuple[SimulatorServer, GatewayServer]:
    sim = simulator("callmissed")
    return sim, gateway(route_to(sim), api_keys=KEYS, breaker={"open_s": BREAKER_OPEN_S})


def spent(server: GatewayServer) -> Decimal:
    usage = httpx.get(f"{server.base_url}/v1/usage", headers={"Authorization": f"Bearer {KEY}"}).json()
    return Decimal(usage["spent_usd"])


def creates(sim: SimulatorServer) -> list[dict[str, Any]]:
    return [r.json for r in sim.requests if r.method == "POST"]


def generate(url: str, out: Path, *args: str) -> tuple[int, dict[str, Any]]:
    summary = out.parent / f"{out.name}-summary.json"
    code = main(["generate", *args, "-o", str(out), "--url", url, "--api-key", KEY, "--no-progress",
                 "--backoff", "0.05", "--summary-json", str(summary)])
    return code, json.loads(summary.read_text()) if summary.exists() else {}


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]


def write_prompts(path: Path, *lines: str | dict[str, Any]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "images"


def test_a_prompts_file_is_written_summed_up_and_a_rerun_pays_nothing(
    served: tuple[SimulatorServer, GatewayServer], out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, server = served
    prompts = write_prompts(
        tmp_path / "prompts.txt", "a paper boat", "# a comment", "", "a lighthouse at dusk",
        {"prompt": "a red fox", "name": "fox", "n": 2, "size": "512x384", "steps": 6, "seed": 42,
         "negative_prompt": "blurry"},
        {"prompt": "a teapot", "output": "teapot", "output_format": "jpeg"})

    code, summary = generate(server.base_url, out, "--prompts", str(prompts), "--size", "256x256", "--concurrency", "3")

    assert code == EXIT_OK, summary
    assert summary["prompts"] == 4 and summary["served"] == 4 and summary["failed"] == 0
    assert summary["images"] == 5 and summary["vendors"] == {"callmissed": 4}
    charged = spent(server)
    assert charged > 0 and Decimal(summary["cost_usd"]) == charged
    records = manifest(out)
    assert sum(Decimal(r["cost_usd"]) for r in records) == charged
    assert {r["status"] for r in records} == {"done"} and {r["vendor"] for r in records} == {"callmissed"}
    fox = [Image.open(out / f"fox-{i}.png") for i in (1, 2)]
    assert [(image.format, image.size) for image in fox] == [("PNG", (512, 384))] * 2
    assert Image.open(out / "teapot.jpg").format == "JPEG"
    assert Image.open(next(out.glob("a-paper-boat-*.png"))).size == (256, 256)
    fox_sent = next(body for body in creates(sim) if body["prompt"] == "a red fox")
    assert (fox_sent["n"], fox_sent["size"], fox_sent["steps"], fox_sent["seed"], fox_sent["negative_prompt"]) == (
        2, "512x384", 6, 42, "blurry")
    printed = capsys.readouterr().out
    assert f"${charged:.6f}" in printed and "callmissed 4" in printed

    sent_before = len(creates(sim))
    code, rerun = generate(server.base_url, out, "--prompts", str(prompts), "--size", "256x256")

    assert code == EXIT_OK
    assert (rerun["skipped"], rerun["served"], rerun["cost_usd"]) == (4, 0, "0")
    assert spent(server) == charged and len(creates(sim)) == sent_before


def test_a_deleted_image_comes_back_as_a_free_replay_of_the_same_request(
    served: tuple[SimulatorServer, GatewayServer], out: Path
) -> None:
    sim, server = served
    code, _ = generate(server.base_url, out, "a paper boat", "--size", "256x256", "--name", "boat")
    assert code == EXIT_OK
    original = (out / "boat.png").read_bytes()
    charged = spent(server)
    (out / "boat.png").unlink()

    code, again = generate(server.base_url, out, "a paper boat", "--size", "256x256", "--name", "boat")

    assert code == EXIT_OK and (again["served"], again["replayed"], again["cost_usd"]) == (1, 1, "0")
    assert again["latency_p50_s"] is None  # nothing was generated
    assert (out / "boat.png").read_bytes() == original
    assert spent(server) == charged and len(creates(sim)) == 1


def test_a_lost_answer_is_retried_with_the_same_key_and_charged_once(
    served: tuple[SimulatorServer, GatewayServer], out: Path
) -> None:
    sim, server = served
    relay = LossyProxy(int(server.base_url.rsplit(":", 1)[1])).start()
    try:
        relay.drop_replies(1)  # the gateway serves and charges; its answer never arrives
        code, summary = generate(relay.url, out, "a paper boat", "--size", "256x256", "-n", "2")
    finally:
        relay.stop()

    assert relay.dropped == 1
    assert code == EXIT_OK and summary["served"] == 1 and summary["replayed"] == 1
    [record] = manifest(out)
    assert record["attempts"] == 2 and record["replayed"] is True
    assert len(creates(sim)) == 1  # the vendor was asked once
    charged = spent(server)
    assert charged > 0 and Decimal(summary["cost_usd"]) == charged == Decimal(record["cost_usd"])


def test_a_vendor_outage_is_retried_until_served_and_charged_once(
    served: tuple[SimulatorServer, GatewayServer], out: Path
) -> None:
    sim, server = served
    sim.inject(Fault("status", status=503, times=3))  # the gateway's own 3 tries fail: it answers 503

    code, summary = generate(server.base_url, out, "a paper boat", "--size", "256x256")

    assert code == EXIT_OK, summary
    [record] = manifest(out)
    assert record["attempts"] == 2 and record["status"] == "done"
    assert len(creates(sim)) == 4
    assert Decimal(summary["cost_usd"]) == spent(server) > 0


def test_every_prompt_failing_exits_with_the_all_failed_code_and_charges_nothing(
    served: tuple[SimulatorServer, GatewayServer], out: Path, tmp_path: Path
) -> None:
    sim, server = served
    sim.inject(Fault("status", status=500, times=None))
    prompts = write_prompts(tmp_path / "p.txt", "a paper boat", "a lighthouse")

    code, summary = generate(server.base_url, out, "--prompts", str(prompts), "--size", "256x256", "--retries", "1")

    assert code == EXIT_ALL_FAILED
    assert summary["failed"] == 2 and summary["served"] == 0 and summary["cost_usd"] == "0"
    assert {r["status"] for r in manifest(out)} == {"failed"}
    assert spent(server) == 0 and not list(out.glob("*.png"))


def test_some_prompts_failing_exits_with_the_partial_code(
    served: tuple[SimulatorServer, GatewayServer], out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, server = served
    prompts = write_prompts(tmp_path / "p.jsonl", {"prompt": "a paper boat", "name": "ok"},
                            {"prompt": "too many steps", "name": "bad", "steps": 99})

    code, summary = generate(server.base_url, out, "--prompts", str(prompts), "--size", "256x256")

    assert code == EXIT_PARTIAL
    assert (summary["served"], summary["failed"]) == (1, 1)
    assert summary["failures"][0].startswith("line 2: 400")
    assert (out / "ok.png").is_file() and not (out / "bad.png").exists()
    assert "line 2: 400" in capsys.readouterr().err
    assert Decimal(summary["cost_usd"]) == spent(server)


def test_a_refused_key_fails_the_run_without_sending_the_rest(
    served: tuple[SimulatorServer, GatewayServer], out: Path, tmp_path: Path
) -> None:
    sim, server = served
    prompts = write_prompts(tmp_path / "p.txt", *(f"prompt {i}" for i in range(6)))

    code = main(["generate", "--prompts", str(prompts), "-o", str(out), "--url", server.base_url,
                 "--api-key", "bg-wrong", "--no-progress", "--concurrency", "1"])

    assert code == EXIT_ALL_FAILED and sim.requests == []
    assert len(manifest(out)) == 1  # one was sent and refused; the rest were not sent


@pytest.mark.parametrize("name", ["../escaped", "/tmp/escaped", "sub/escaped", "..", ".hidden", "a\\b"])
def test_a_name_that_is_a_path_is_refused_before_anything_is_sent(
    served: tuple[SimulatorServer, GatewayServer], out: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    sim, server = served
    prompts = write_prompts(tmp_path / "p.jsonl", "a paper boat", {"prompt": "x", "name": name})

    code, _ = generate(server.base_url, out, "--prompts", str(prompts))

    assert code == EXIT_USAGE
    assert "line 2: name:" in capsys.readouterr().err
    assert sim.requests == [] and not out.exists() and not (tmp_path / "escaped.png").exists()


def test_a_bad_json_line_is_named_by_its_number(
    served: tuple[SimulatorServer, GatewayServer], out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, server = served
    prompts = write_prompts(tmp_path / "p.jsonl", "a paper boat", '{"prompt": "x", "n": 2', '{"prompt": "y"}')

    code, _ = generate(server.base_url, out, "--prompts", str(prompts))

    assert code == EXIT_USAGE and sim.requests == []
    err = capsys.readouterr().err
    assert "line 2: not valid JSON" in err and "Traceback" not in err
