"""The ``/_sim/`` admin API: push and clear faults, let held requests go, read and clear the
request log, read what the simulated jobs have billed.

It exists for clients outside the Python process (benchmarks drive a simulator started by the
CLI); in-process tests use ``SimulatorServer``'s methods, which act on the same state.
"""

from __future__ import annotations

from typing import Any

from backends.simulators.asgi import SimRequest, SimResponse, json_response
from backends.simulators.faults import Fault
from backends.simulators.protocol import SimulatedVendor
from backends.simulators.state import SimulatorState, release_held

ADMIN_PREFIX = "/_sim/"


def answer_admin(request: SimRequest, state: SimulatorState, vendor: SimulatedVendor) -> SimResponse:
    key = (request.method, request.path.rstrip("/"))
    if key == ("POST", "/_sim/faults"):
        return _push_faults(request, state, vendor)
    if key == ("GET", "/_sim/faults"):
        return json_response({"faults": [fault.to_json() for fault in state.faults.pending()]})
    if key == ("DELETE", "/_sim/faults"):
        state.faults.clear()
        return json_response({"cleared": True})
    if key == ("POST", "/_sim/release"):
        release_held(state)
        return json_response({"released": True})
    if key == ("GET", "/_sim/requests"):
        return json_response({"requests": [entry.to_json() for entry in state.requests.snapshot()]})
    if key == ("DELETE", "/_sim/requests"):
        state.requests.clear()
        return json_response({"cleared": True})
    if key == ("GET", "/_sim/cancels"):
        return json_response({"cancels": state.cancels.snapshot()})
    if key == ("GET", "/_sim/billing"):
        return json_response({"billed_usd": str(vendor.billed_usd(state))})
    if key == ("GET", "/_sim/health"):
        return json_response({"vendor": vendor.name, "status": "ok"})
    return json_response({"error": f"no admin route {request.method} {request.path}"}, 404)


def _push_faults(request: SimRequest, state: SimulatorState, vendor: SimulatedVendor) -> SimResponse:
    """Accepts one fault object, a list of them, or ``{"faults": [...]}``."""
    try:
        body: Any = request.json()
        if isinstance(body, dict) and "faults" in body:
            body = body["faults"]
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("each fault must be a JSON object")
        faults = [Fault.from_json(item) for item in items]
        for fault in faults:
            vendor.check_fault(fault)
    except (ValueError, TypeError) as exc:
        return json_response({"error": str(exc)}, 400)
    state.faults.push(*faults)
    return json_response({"queued": len(faults)})
