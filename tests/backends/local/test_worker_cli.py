"""The worker's command line: flags and ``--set`` become a LocalBackendConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.local.worker_cli import build_worker_parser, config_from_args, main_worker


def test_flags_and_settings_become_the_config() -> None:
    args = build_worker_parser().parse_args([
        "--model-dir", "/models/sdxl", "--preload-steps", "1,4", "--compile", "--no-warmup",
        "--set", "batch_window_ms=25", "--set", "fp16_fix_vae=true", "--port", "9001",
    ])
    config = config_from_args(args)
    assert config.model_dir == Path("/models/sdxl")
    assert config.preload_steps == (1, 4)
    assert (config.compile_unet, config.compile_vae, config.warmup) == (True, True, False)
    assert (config.batch_window_ms, config.fp16_fix_vae) == (25.0, True)
    assert (args.host, args.port) == ("127.0.0.1", 9001)


def test_an_invalid_setting_exits_2_without_serving(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_worker(["--set", "preload_steps=3"]) == 2
    assert "no Lightning checkpoint" in capsys.readouterr().err


def test_refuses_to_listen_beyond_loopback_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOLTGATE_WORKER_TOKEN", raising=False)
    assert main_worker(["--host", "0.0.0.0", "--no-warmup"]) == 2
    assert "BOLTGATE_WORKER_TOKEN" in capsys.readouterr().err


def test_the_log_format_flag_is_the_gateways_choice() -> None:
    assert build_worker_parser().parse_args([]).log_format == "human"
    assert build_worker_parser().parse_args(["--log-format", "json"]).log_format == "json"
    with pytest.raises(SystemExit):
        build_worker_parser().parse_args(["--log-format", "xml"])
