"""``bench/gpu_check.py --smoke``: the GPU check's code paths on the CPU, as ``make test`` runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_gpu_check_smoke_run_passes() -> None:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke"], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for figure in ("UNet step:", "VAE decode", "batch 1 latency:", "batch 8:", "recompile behaviour: 6 sizes",
                   "512x264: ok", "load + warm-up (compiling):"):
        assert figure in result.stdout, figure
    assert result.stdout.rstrip().splitlines()[-1].startswith("OK")
