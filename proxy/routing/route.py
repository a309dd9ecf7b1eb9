"""A route: one backend (vendor x region) with the policy knobs of its vendor account."""

from __future__ import annotations

from dataclasses import dataclass, field

from backends.base import Backend


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    backend: Backend
    priority: int = 100
    weight: float = 1.0
    max_attempts: int = 3
    account: str = ""
    """The vendor account (route config) this region belongs to; weights apply per account."""
    region_rank: int = 0
    """Position of the region in its account's list: the first listed is the primary."""
    timeout_s: float = 30.0
    """The longest one attempt may run (the route's ``timeout_s``)."""
    max_billable_s_per_image: float | None = None
    """For vendors billed by run time: the most run time per image a client can be billed."""
    vendor: str = field(init=False)
    """The backend's vendor and region, and the route's key ``vendor:region``: read on every
    request many times over, so taken once here (a backend's vendor and region never change)."""
    region: str = field(init=False)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        vendor, region = self.backend.vendor, self.backend.region
        object.__setattr__(self, "vendor", vendor)
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "key", f"{vendor}:{region}")

    def max_billable_s(self, images: int) -> float:
        """The most run time a request for ``images`` images can be billed on this route."""
        if self.max_billable_s_per_image is None:
            return self.timeout_s
        return self.max_billable_s_per_image * images
