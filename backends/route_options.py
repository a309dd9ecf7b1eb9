"""Which ``options = {...}`` each backend of a route takes, so that a typo is refused when the
settings are read instead of being ignored (a vendor adapter reads only the names it knows)."""

from __future__ import annotations

from collections.abc import Mapping


def option_names(vendor: str) -> frozenset[str]:
    """The option names ``vendor``'s backend reads (empty for an unknown vendor)."""
    if vendor == "local":
        from backends.local.config import LocalBackendConfig

        return frozenset(LocalBackendConfig.model_fields)
    from backends.vendors.registry import VENDOR_SPECS

    spec = VENDOR_SPECS.get(vendor)
    return frozenset(spec.default_options) if spec is not None else frozenset()


def unknown_options(vendor: str, options: Mapping[str, str]) -> str | None:
    """Why ``options`` do not suit ``vendor`` (the unknown names and the known ones), or None."""
    known = option_names(vendor)
    unknown = sorted(set(options) - known)
    if not unknown:
        return None
    takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
    return f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for {vendor}: {takes}"
