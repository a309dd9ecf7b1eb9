"""The vendors' capabilities as a Markdown table, printed from the same data the router filters on
(``boltgate vendors``; the README's table is this output, and a test keeps them equal)."""

from __future__ import annotations

from backends.base import Capabilities
from backends.local.engine import LOCAL_CAPABILITIES
from backends.vendors.registry import VENDOR_SPECS


def capabilities_by_backend() -> dict[str, Capabilities]:
    table = {name: spec.capabilities for name, spec in VENDOR_SPECS.items()}
    table["local"] = LOCAL_CAPABILITIES
    return table


def _steps(capabilities: Capabilities) -> str:
    if capabilities.fixed_steps is not None:
        return ", ".join(str(step) for step in sorted(capabilities.fixed_steps))
    return f"1-{capabilities.max_steps}"


def render_capability_table() -> str:
    rows = ["| backend | steps | sides | n | image-to-image | negative prompt | native formats |",
            "|---|---|---|---|---|---|---|"]
    for name, caps in capabilities_by_backend().items():
        rows.append(
            f"| `{name}` | {_steps(caps)} | {caps.min_side}-{caps.max_side} | 1-{caps.max_n} | "
            f"{'yes' if caps.image_to_image else 'no'} | {'yes' if caps.negative_prompt else 'no'} | "
            f"{', '.join(sorted(caps.output_formats))} |"
        )
    return "\n".join(rows)
