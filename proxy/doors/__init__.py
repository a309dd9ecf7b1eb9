"""Vendor doors: an app written against a vendor's own API points at the gateway and keeps its code.

Each door serves one vendor's paths, methods, key header and body shapes under
``/vendors/<vendor>`` (``spec`` says what a door is, ``runs`` holds what every door shares), turns
the vendor's request into the one ``ImageRequest`` and hands it to the gateway, so it is routed
(maybe to another vendor), billed and stored like any ``/v1/images/generations`` request, and
answers in the vendor's shape with the gateway's image URLs. Where the vendor's create answers at
once (Runflow, Eachlabs), so does the door: the run is an async job (``proxy.jobs``) that the
door's polls follow; where it answers with the image (imageapi), the door serves it first.
"""

from __future__ import annotations

from litestar import Router

from proxy.doors import eachlabs, imageapi, runflow

DOOR_ROUTERS: list[Router] = [runflow.ROUTER, eachlabs.ROUTER, imageapi.ROUTER]
