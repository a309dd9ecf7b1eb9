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
    return spec.option_names if spec is not None else frozenset()


AUTH_SCHEMES = ("bearer", "x-api-key")


def unknown_options(vendor: str, options: Mapping[str, str]) -> str | None:
    """Why ``options`` do not suit ``vendor`` (the unknown names and the known ones, or an
    ``auth_scheme`` the adapters cannot send), or None."""
    known = option_names(vendor)
    unknown = sorted(set(options) - known)
    if not unknown:
        scheme = options.get("auth_scheme")
        if scheme is not None and scheme not in AUTH_SCHEMES:
            return f"option auth_scheme for {vendor} must be {' or '.join(AUTH_SCHEMES)}, not {scheme!r}"
        return None
    takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
    return f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for {vendor}: {takes}"
