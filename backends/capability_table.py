"""What each backend can serve and what each vendor's documentation confirms, printed from the
same data the router filters on (``boltgate vendors``; the README's tables are this output, and a
test keeps them equal)."""

from __future__ import annotations

from backends.base import Capabilities
from backends.local.engine import LOCAL_CAPABILITIES
from backends.vendors.registry import VENDOR_SPECS


def capabilities_by_backend() -> dict[str, Capabilities]:
    table = {name: spec.capabilities for name, spec in VENDOR_SPECS.items()}
    table["local"] = LOCAL_CAPABILITIES
    return table


def _steps(capabilities: Capabilities) -> str:
    if not capabilities.steps:
        return "not sent"
    if capabilities.fixed_steps is not None:
        return ", ".join(str(step) for step in sorted(capabilities.fixed_steps))
    return f"1-{capabilities.max_steps}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render_capability_table() -> str:
    rows = ["| backend | steps | sides | n | image-to-image | seed | negative prompt | guidance | native formats |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, caps in capabilities_by_backend().items():
        rows.append(
            f"| `{name}` | {_steps(caps)} | {caps.min_side}-{caps.max_side} | 1-{caps.max_n} | "
            f"{_yes(caps.image_to_image)} | {_yes(caps.seed)} | {_yes(caps.negative_prompt)} | "
            f"{_yes(caps.guidance)} | {', '.join(sorted(caps.output_formats))} |"
        )
    return "\n".join(rows)


def render_behaviour_table() -> str:
    """Per vendor, what the adapter relies on: confirmed (with the page that shows it) or assumed."""
    rows = ["| vendor | behaviour | confirmed by |", "|---|---|---|"]
    for name, spec in VENDOR_SPECS.items():
        for behaviour in sorted(spec.behaviours, key=lambda item: not item.confirmed):
            source = behaviour.source if behaviour.source is not None else "**assumed**"
            rows.append(f"| `{name}` | {behaviour.what.replace('|', '/')} | {source} |")
    return "\n".join(rows)
