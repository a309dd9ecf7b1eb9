"""What one request asks of the router: a routing policy, one vendor (and region), hedging.

A client asks with ``routing_policy`` in the body (or ``x-boltgate-routing-policy``),
``x-boltgate-route: <vendor>[/<region>]`` and ``x-boltgate-hedge: on|off``; its key's
``routing`` says what it may ask for. A pinned request is served by that vendor or answered why
not: it never fails over elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from core.errors import InvalidRequest, PermissionDenied
from pricing.config import KeyRouting, RoutingPolicyName
from proxy.routing.route import Route

POLICY_HEADER = "x-boltgate-routing-policy"
ROUTE_HEADER = "x-boltgate-route"
HEDGE_HEADER = "x-boltgate-hedge"
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
POLICIES: tuple[str, ...] = get_args(RoutingPolicyName)
_VENDOR = r"[a-z][a-z0-9_-]*"
_REGION = r"[A-Za-z0-9_.:-]+"
ROUTE_PATTERN = f"^{_VENDOR}(/{_REGION})?$"
"""What ``x-boltgate-route`` takes (as the OpenAPI document states it)."""
_PIN = re.compile(f"^(?P<vendor>{_VENDOR})(?:/(?P<region>{_REGION}))?$")
HEDGE_SWITCHES: tuple[str, ...] = tuple(_SWITCH)


@dataclass(frozen=True, slots=True)
class RoutingChoice:
    policy: str | None = None
    """None: the gateway's ``routing_policy``."""
    vendor: str | None = None
    region: str | None = None
    hedge: bool | None = None
    """Hedge this request (True) or not (False); None: the gateway's ``hedging.enabled``."""

    @classmethod
    def asked(cls, policy: object, pinned: str | None, hedge: str | None = None) -> RoutingChoice:
        """From the client's words; 400 naming the field when they are not a policy, a route or
        a switch."""
        if policy is not None and policy not in POLICIES:
            raise InvalidRequest(f"routing_policy must be one of {', '.join(POLICIES)}", param="routing_policy")
        chosen = policy if isinstance(policy, str) else None
        hedging = None
        if hedge is not None:
            hedging = _SWITCH.get(hedge.strip().lower())
            if hedging is None:
                raise InvalidRequest(f"{HEDGE_HEADER} must be 'on' or 'off'", param=HEDGE_HEADER)
        if pinned is None:
            return cls(chosen, hedge=hedging)
        found = _PIN.fullmatch(pinned.strip())
        if found is None:
            raise InvalidRequest(f"{ROUTE_HEADER} must be '<vendor>' or '<vendor>/<region>'", param=ROUTE_HEADER)
        return cls(chosen, found["vendor"], found["region"], hedging)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], policy: object = None) -> RoutingChoice:
        """What a request asks by its headers (and ``policy``, the body's ``routing_policy``,
        which wins over ``x-boltgate-routing-policy``): the one reading that generations and job
        submits share, so a job may ask exactly what a synchronous request may."""
        if policy is None:
            policy = headers.get(POLICY_HEADER)
        return cls.asked(policy, headers.get(ROUTE_HEADER), headers.get(HEDGE_HEADER))

    @property
    def pinned(self) -> bool:
        return self.vendor is not None

    def describe_pin(self) -> str:
        return f"{self.vendor}/{self.region}" if self.region else str(self.vendor)

    def check_allowed(self, allowed: KeyRouting | None) -> None:
        """403 when the key may not ask for this."""
        if allowed is None:
            return
        if self.policy is not None and allowed.policies is not None and self.policy not in allowed.policies:
            raise PermissionDenied(f"This key may ask for routing_policy {', '.join(allowed.policies) or 'none'}",
                                   param="routing_policy")
        if self.pinned and not allowed.pin_routes:
            raise PermissionDenied(f"This key may not choose its route ({ROUTE_HEADER})", param=ROUTE_HEADER)
        if self.hedge and not allowed.hedging:
            raise PermissionDenied(f"This key may not ask for hedging ({HEDGE_HEADER})", param=HEDGE_HEADER)

    def pinned_routes(self, routes: list[Route]) -> list[Route]:
        """The routes a pinned request may use; 400 when the gateway has no such route at all."""
        if not self.pinned:
            return routes
        matching = [route for route in routes
                    if route.vendor == self.vendor and (self.region is None or route.region == self.region)]
        if not matching:
            known = ", ".join(sorted({f"{route.vendor}/{route.region}" for route in routes})) or "none"
            raise InvalidRequest(f"No route {self.describe_pin()} here; the routes are: {known}", param=ROUTE_HEADER)
        return matching


DEFAULT_CHOICE = RoutingChoice()
