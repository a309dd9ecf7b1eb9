"""What a vendor door is: a frozen description of one vendor's own API, seen from the client side.

A door is the mirror of a vendor adapter (``backends.vendors.spec``): the adapter writes the
vendor's request and reads its answer; a door reads the vendor's request, as an app written
against that vendor sends it, and writes the vendor's answer. Between the two sits the one
``ImageRequest``, so whatever door a request comes in by, it is routed, billed and served like
any other.

A door's input is a table (``InputMapping``): which of the vendor's fields become which request
field, which are accepted only with the values the gateway honours anyway, and which are refused
(with the reason) because the gateway cannot honour them. A field in none of the three is refused
as unknown, as the vendors' own validation does: a typo is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from core.errors import BoltgateError, InvalidRequest
from core.request import ImageRequest, OutputFormat

AuthHeader = Literal["bearer", "x-api-key"]
ErrorBody = Callable[[BoltgateError], dict[str, Any]]
"""From any gateway error to the vendor's own error body (its status code stays the gateway's)."""


@dataclass(frozen=True, slots=True)
class InputMapping:
    """How a vendor's input fields become an ``ImageRequest``."""

    fields: Mapping[str, str]
    """Vendor field -> ``ImageRequest`` field (``prompt`` -> ``prompt``, ``guidance`` -> ``guidance_scale``).
    None of them takes a boolean (a JSON ``true`` is refused, not read as 1): a vendor's switches
    are ``accepted`` values."""
    accepted: Mapping[str, frozenset[Any]] = field(default_factory=dict)
    """Fields taken only with these values, each one the gateway serves anyway (Eachlabs'
    ``scheduler: "K_EULER"``); another value is refused."""
    refused: Mapping[str, str] = field(default_factory=dict)
    """Fields the vendor documents and the gateway cannot honour, with the reason."""
    empty_is_absent: frozenset[str] = frozenset({"negative_prompt", "seed"})
    """Vendor fields whose ``""`` or ``null`` means "not given" (their examples send both)."""
    output_format: OutputFormat = "png"
    """The format the vendor hands out, so the app gets the image type it was written for."""
    prefix: str = ""
    """How the vendor names a field of its input in errors (Runflow: ``input.steps``)."""

    def to_request(self, values: Any) -> ImageRequest:
        """The request ``values`` describe; ``InvalidRequest`` naming the vendor's field otherwise."""
        if not isinstance(values, dict):
            raise InvalidRequest(f"{self.prefix.rstrip('.') or 'the body'} must be a JSON object",
                                 param=self.prefix.rstrip(".") or None)
        fields: dict[str, Any] = {"output_format": self.output_format, "response_format": "url"}
        for name, value in values.items():
            param = f"{self.prefix}{name}"
            if name in self.refused:
                raise InvalidRequest(f"'{param}' is not supported by this gateway: {self.refused[name]}",
                                     param=param, code="unsupported_parameter")
            if name in self.accepted:
                if not isinstance(value, Hashable) or value not in self.accepted[name]:  # [] or {}: never one
                    allowed = ", ".join(sorted(repr(choice) for choice in self.accepted[name]))
                    raise InvalidRequest(f"'{param}' must be one of {allowed} here, not {value!r}",
                                         param=param, code="unsupported_value")
                continue
            if name not in self.fields:
                raise InvalidRequest(f"Unrecognized field: '{param}'", param=param, code="unknown_parameter")
            if name in self.empty_is_absent and value in ("", None):
                continue
            if isinstance(value, bool):  # lax validation (Eachlabs' strings) would read true as 1
                raise InvalidRequest(f"Invalid '{param}': a boolean is not a value this field takes",
                                     param=param)
            fields[self.fields[name]] = value
        try:
            return ImageRequest.model_validate(fields)
        except ValidationError as error:
            raise self._named(error) from error

    def _named(self, error: ValidationError) -> InvalidRequest:
        first = error.errors(include_url=False)[0]
        target = str(first["loc"][0]) if first["loc"] else ""
        vendor = next((name for name, mapped in self.fields.items() if mapped == target), target)
        param = f"{self.prefix}{vendor}" if vendor else None
        return InvalidRequest(f"Invalid '{param}': {first['msg']}", param=param)


@dataclass(frozen=True, slots=True)
class DoorSpec:
    """One vendor's API as the gateway serves it under ``/vendors/<name>``."""

    name: str
    auth: tuple[AuthHeader, ...]
    """The headers the vendor's clients send the key in, each accepted."""
    error_body: ErrorBody
    invalid_status: int = 400
    """The status of a request body the vendor would refuse (Runflow: 422)."""
    source: str = ""
    """Where the vendor documents the API this door serves."""
