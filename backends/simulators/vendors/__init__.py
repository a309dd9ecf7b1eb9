"""One module per vendor, each describing its wire format as a ``SimulatedVendor`` (``SPEC``).

A simulator is found, not listed: each module here with a ``SPEC`` is one, under its name.
"""

from __future__ import annotations

import importlib
import pkgutil

from backends.simulators.protocol import SimulatedVendor


def _discover() -> dict[str, SimulatedVendor]:
    found: dict[str, SimulatedVendor] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        spec = getattr(importlib.import_module(f"{__name__}.{module_info.name}"), "SPEC", None)
        if isinstance(spec, SimulatedVendor):
            found[spec.name] = spec
    return found


SPECS: dict[str, SimulatedVendor] = _discover()
VENDORS: tuple[str, ...] = tuple(SPECS)
"""Every simulated vendor, by name, in alphabetical order."""


def vendor_spec(vendor: str) -> SimulatedVendor:
    try:
        return SPECS[vendor]
    except KeyError:
        raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}") from None
