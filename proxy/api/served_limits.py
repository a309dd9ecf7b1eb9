"""What this deployment's routes can serve, written into the documented request bodies.

The request model accepts what SDXL-Lightning could do (steps 1-50, sides 256-1536, n 1-4); a
deployment serves what its routes can. The OpenAPI document states the latter: for each endpoint,
the step counts, sides and ``n`` that at least one of its routes serves (every route for
generations, the image-to-image ones for edits). A request inside those bounds that no single
route can serve (a combination no route has) is a 400 ``unsupported_request`` naming every
route's reason; one outside them is too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backends.base import Capabilities
from core.request import MAX_STEPS, SIDE_STEP
from proxy.api.openai_fields import QUALITY_STEPS

DEFAULT_STEPS = 4
AUTO_SIDE = 1024
"""``size=auto`` is 1024x1024."""


@dataclass(frozen=True)
class ServedLimits:
    """The union of what some routes serve: step counts, sides, the largest ``n``."""

    steps: frozenset[int]
    sides: frozenset[int]
    max_n: int

    @classmethod
    def of(cls, capabilities: Iterable[Capabilities]) -> ServedLimits | None:
        """The limits of ``capabilities`` taken together; None when there are none."""
        steps: set[int] = set()
        sides: set[int] = set()
        max_n = 0
        for caps in capabilities:
            steps |= caps.fixed_steps if caps.fixed_steps is not None else set(range(1, caps.max_steps + 1))
            sides |= set(range(caps.min_side, caps.max_side + 1, SIDE_STEP))
            max_n = max(max_n, caps.max_n)
        if not steps or not sides:
            return None
        return cls(frozenset(step for step in steps if step <= MAX_STEPS), frozenset(sides), max_n)

    def document(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` (a request model's JSON Schema) narrowed to these limits."""
        properties = {name: dict(node) for name, node in schema["properties"].items()}
        for name in ("steps", "num_inference_steps"):
            if name in properties:
                properties[name] = _nullable(properties[name], self._steps_schema())
        properties["n"] = _nullable(properties["n"], {"type": "integer", "minimum": 1, "maximum": self.max_n})
        properties["size"] = {**properties["size"], "pattern": self.size_pattern()}
        qualities = [quality for quality, steps in QUALITY_STEPS.items()
                     if (steps if steps is not None else DEFAULT_STEPS) in self.steps]
        properties["quality"] = _nullable(properties["quality"], {"type": "string", "enum": qualities})
        return {**schema, "properties": properties}

    def _steps_schema(self) -> dict[str, Any]:
        low, high = min(self.steps), max(self.steps)
        if self.steps == frozenset(range(low, high + 1)):
            return {"type": "integer", "minimum": low, "maximum": high}
        return {"type": "integer", "enum": sorted(self.steps)}

    def size_pattern(self) -> str:
        sides = "|".join(str(side) for side in sorted(self.sides))
        auto = "auto|" if AUTO_SIDE in self.sides else ""
        return f"^({auto}({sides})x({sides}))$"


def _nullable(node: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """``node`` (``anyOf: [X, null]``, as pydantic writes an optional field) with X replaced."""
    kept = {key: value for key, value in node.items() if key != "anyOf"}
    return {**kept, "anyOf": [variant, {"type": "null"}]}
