"""``python -m backends.simulators`` serves in the foreground and prints each base URL."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx


def test_the_cli_prints_a_base_url_per_vendor_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backends.simulators",
            "--vendor",
            "eachlabs",
            "--vendor",
            "imageapi",
            "--api-key",
            "cli-key",
            "--response-shape",
            "image_url",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().split() for _ in range(2)]
        urls = dict(lines)
        assert list(urls) == ["eachlabs", "imageapi"]
        answer = httpx.post(
            urls["imageapi"] + "/api/v1/generate",
            headers={"Authorization": "Bearer cli-key"},
            json={"prompt": "x", "width": 256, "height": 256},
            timeout=5,
        )
        assert "image_url" in answer.json()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
