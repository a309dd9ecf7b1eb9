"""What this deployment's routes can serve, written into the documented request bodies.

The request model accepts what SDXL-Lightning could do (steps 1-50, sides 256-1536, n 1-4); a
deployment serves what its routes can. The OpenAPI document states the latter: for each endpoint,
the step counts, sides and ``n`` that at least one of its routes serves (every route for
generations, the image-to-image ones for edits). A request inside those bounds that no single
route can serve (a combination no route has) is a 400 ``unsupported_request`` naming every
route's reason; one outside them is too.

A field that only some vendors have (``seed``, ``steps``, ``negative_prompt``,
``guidance_scale``: a request that sets one is never sent to a vendor that would ignore it) is
documented only when at least one route takes it; otherwise it may only be null (``quality``,
which sets ``steps``, only ``auto``).
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


OPTIONAL_FIELDS = {"seed": "seed", "negative_prompt": "negative_prompt", "guidance": "guidance_scale"}
"""``Capabilities`` flag -> the request field a route without it refuses."""


@dataclass(frozen=True)
class ServedLimits:
    """The union of what some routes serve: step counts asked for, sides, the largest ``n``, the
    optional fields some route takes, and whether some route serves the default step count."""

    steps: frozenset[int]
    sides: frozenset[int]
    max_n: int
    fields: frozenset[str] = frozenset(OPTIONAL_FIELDS.values())
    default_steps: bool = True

    @classmethod
    def of(cls, capabilities: Iterable[Capabilities]) -> ServedLimits | None:
        """The limits of ``capabilities`` taken together; None when there are none."""
        steps: set[int] = set()
        sides: set[int] = set()
        fields: set[str] = set()
        max_n, default_steps = 0, False
        for caps in capabilities:
            counts = caps.fixed_steps if caps.fixed_steps is not None else set(range(1, caps.max_steps + 1))
            if caps.steps:  # a vendor without a steps field picks its own: it serves no count asked for
                steps |= counts
            default_steps |= not caps.steps or DEFAULT_STEPS in counts
            sides |= set(range(caps.min_side, caps.max_side + 1, SIDE_STEP))
            max_n = max(max_n, caps.max_n)
            fields |= {name for flag, name in OPTIONAL_FIELDS.items() if getattr(caps, flag)}
        if not sides:
            return None
        return cls(frozenset(step for step in steps if step <= MAX_STEPS), frozenset(sides), max_n,
                   frozenset(fields), default_steps)

    def document(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` (a request model's JSON Schema) narrowed to these limits."""
        properties = {name: dict(node) for name, node in schema["properties"].items()}
        for name in ("steps", "num_inference_steps"):
            if name in properties:
                properties[name] = _nullable(properties[name], self._steps_schema()) if self.steps else _null(
                    properties[name], "No route takes a step count")
        properties["n"] = _nullable(properties["n"], {"type": "integer", "minimum": 1, "maximum": self.max_n})
        properties["size"] = {**properties["size"], "pattern": self.size_pattern()}
        qualities = [quality for quality, steps in QUALITY_STEPS.items()
                     if (self.default_steps if steps is None else steps in self.steps)]
        properties["quality"] = (_nullable(properties["quality"], {"type": "string", "enum": qualities}) if qualities
                                 else _null(properties["quality"], "No route serves a quality"))
        for name in sorted(set(OPTIONAL_FIELDS.values()) - self.fields):
            if name == "negative_prompt":  # an empty one asks for nothing
                properties[name] = _nullable(properties[name], {"type": "string", "maxLength": 0})
            elif name in properties:
                properties[name] = _null(properties[name], f"No route takes {name}")
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


def _null(node: dict[str, Any], why: str) -> dict[str, Any]:
    """``node`` narrowed to null: the field is accepted only when it asks for nothing."""
    kept = {key: value for key, value in node.items() if key not in ("anyOf", "type", "default")}
    return {**kept, "type": "null", "description": why}


def _nullable(node: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """``node`` (``anyOf: [X, null]``, as pydantic writes an optional field) with X replaced."""
    kept = {key: value for key, value in node.items() if key != "anyOf"}
    return {**kept, "anyOf": [variant, {"type": "null"}]}
