"""The types of the parts ``GatewayPlugin`` injects into handlers, by parameter name.

Each is marked ``skip_validation``: these are the app's own objects, not client input, so
Litestar hands them over as they are instead of converting them on every request.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import Dependency

from proxy.billing import Billing
from proxy.gateway import Gateway
from proxy.images.store import ImageStore
from proxy.jobs.service import JobService
from proxy.settings import Settings

InjectedSettings = Annotated[Settings, Dependency(skip_validation=True)]
"""``settings``: what the app was created with."""
InjectedGateway = Annotated[Gateway, Dependency(skip_validation=True)]
"""``gateway``: routes, bills and stores one image request."""
InjectedBilling = Annotated[Billing, Dependency(skip_validation=True)]
"""``billing``: the gateway's keys, ledger and prices."""
InjectedImageStore = Annotated[ImageStore, Dependency(skip_validation=True)]
"""``image_store``: where served images wait for their download."""
InjectedJobs = Annotated[JobService, Dependency(skip_validation=True)]
"""``jobs``: submits, looks up and cancels async jobs."""
