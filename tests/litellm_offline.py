"""LiteLLM, imported without reaching the internet.

At import LiteLLM fetches its model price list from GitHub (three tries, ~15 s where there is no
network) unless told to use the copy it ships with; this module tells it so, then imports it.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import litellm
from litellm.types.utils import ImageResponse

__all__ = ["ImageResponse", "litellm"]
