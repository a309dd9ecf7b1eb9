"""Every vendor boltgate speaks, by name (the ``vendor`` of a route in the settings)."""

from __future__ import annotations

from backends.vendors.aigateway import AIGATEWAY
from backends.vendors.callmissed import CALLMISSED
from backends.vendors.eachlabs import EACHLABS
from backends.vendors.imageapi import IMAGEAPI
from backends.vendors.runflow import RUNFLOW
from backends.vendors.spec import VendorSpec
from backends.vendors.worker import WORKER

VENDOR_SPECS: dict[str, VendorSpec] = {
    spec.name: spec for spec in (CALLMISSED, RUNFLOW, EACHLABS, IMAGEAPI, AIGATEWAY, WORKER)
}
