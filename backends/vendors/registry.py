"""Every vendor boltgate speaks, by name."""

from __future__ import annotations

from backends.vendors.aigateway import AIGATEWAY
from backends.vendors.callmissed import CALLMISSED
from backends.vendors.spec import VendorSpec

VENDOR_SPECS: dict[str, VendorSpec] = {spec.name: spec for spec in (CALLMISSED, AIGATEWAY)}
