"""One module per vendor, each describing its wire format as a ``SimulatedVendor``."""

from __future__ import annotations

from backends.simulators.protocol import SimulatedVendor
from backends.simulators.vendors import aigateway, callmissed, eachlabs, imageapi, runflow

SPECS: dict[str, SimulatedVendor] = {
    module.SPEC.name: module.SPEC for module in (callmissed, runflow, eachlabs, imageapi, aigateway)
}
VENDORS: tuple[str, ...] = tuple(SPECS)
"""("callmissed", "runflow", "eachlabs", "imageapi", "aigateway")"""


def vendor_spec(vendor: str) -> SimulatedVendor:
    try:
        return SPECS[vendor]
    except KeyError:
        raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}") from None
