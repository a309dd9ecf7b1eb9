"""Every vendor boltgate speaks, by name (the ``vendor`` of a route in the settings).

A vendor is found, not listed: each module of ``backends.vendors`` that defines a ``VendorSpec``
named after the module (``eachlabs.py`` -> ``name="eachlabs"``) is one. Adding a vendor is adding
its module (plus its simulator, its price and its contract examples); nothing here changes.
"""

from __future__ import annotations

import importlib
import pkgutil

import backends.vendors
from backends.vendors.spec import VendorSpec


def _discover() -> dict[str, VendorSpec]:
    found: dict[str, VendorSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(backends.vendors.__path__), key=lambda info: info.name):
        if module_info.ispkg or module_info.name == "registry":
            continue
        module = importlib.import_module(f"{backends.vendors.__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, VendorSpec) and value.name == module_info.name:
                found[value.name] = value
    return found


VENDOR_SPECS: dict[str, VendorSpec] = _discover()


def price_key(vendor: str) -> str:
    """The price catalog entry of a backend (each vendor's spec names it; GPU workers are
    priced as our own GPUs, ``local``)."""
    spec = VENDOR_SPECS.get(vendor)
    return spec.facts.price_key if spec is not None else vendor
