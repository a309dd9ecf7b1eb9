"""The routing tests import their backend double as ``tests.proxy.routing.scripted_backend``."""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[3])
if _REPO_ROOT not in sys.path:  # the double lives beside the tests, not in the package
    sys.path.insert(0, _REPO_ROOT)
