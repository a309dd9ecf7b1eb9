"""The ASGI app of one simulator: admin routes, then recording and faults, then the vendor.

Every vendor request is recorded, waits the configured latency, takes the next matching
fault, and only then reaches the vendor's handler, so faults behave the same for all vendors.
A create the handler accepts is counted (``SimulatorState.billed_creates``): the vendor's own
bill, whether or not its answer reaches the client.
"""

from __future__ import annotations

import asyncio

from backends.simulators.admin import ADMIN_PREFIX, answer_admin
from backends.simulators.asgi import (
    Receive,
    Scope,
    Send,
    SimRequest,
    SimResponse,
    read_request,
    reset_connection,
    send_response,
    wait_for_disconnect,
)
from backends.simulators.faults import LOST_ANSWER_KINDS, Fault
from backends.simulators.files import FILES_PREFIX
from backends.simulators.outputs import serve_file
from backends.simulators.protocol import Call, SimError, SimulatedVendor
from backends.simulators.recording import RecordedRequest
from backends.simulators.state import SimulatorState

MALFORMED_BODY = b'{"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgoAAAANSUhEUgAA'
"""A 200 body cut short, as when a proxy drops the connection mid-answer: not JSON at all."""


class SimulatorApp:
    def __init__(self, vendor: SimulatedVendor, state: SimulatorState) -> None:
        self.vendor = vendor
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        if request.path.startswith(ADMIN_PREFIX) and not request.path.startswith(FILES_PREFIX):
            response: SimResponse | None = answer_admin(request, self.state, self.vendor)
        else:
            response = await self._serve(request, receive)
        if response is not None:
            await send_response(send, response)

    async def _serve(self, request: SimRequest, receive: Receive) -> SimResponse | None:
        """The vendor's answer, or None when a fault means answering nothing."""
        state = self.state
        recorded = RecordedRequest(request.method, request.path, request.headers, request.json_or_none())
        state.requests.append(recorded, len(request.body))
        matched = self.vendor.match(request.method, request.path)
        creates_output = matched is not None and matched[0].creates_output
        fault = state.faults.take(request.method, request.path, creates_output=creates_output)
        if fault is not None and fault.kind == "hold":
            await state.release.wait()
        delay = state.config.latency_s + ((fault.seconds or 0.0) if fault is not None else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and fault.kind in ("hang", "reset", "status", "malformed"):
            return await self._misbehave(fault, receive)
        if request.method == "GET" and request.path.startswith(FILES_PREFIX):
            return await serve_file(request, state)
        if matched is None:
            return self.vendor.error_response(SimError(404, f"No route for {request.method} {request.path}"))
        route, params = matched
        if route.auth and not self.vendor.authorized(request.headers, state.config.api_key):
            return self.vendor.error_response(SimError(401))
        call = Call(request, params, state, self.vendor, fault)
        try:
            response = await route.handler(call)
        except SimError as error:
            return self.vendor.error_response(error)
        if route.creates_output and response.status < 400 and not call.replayed:
            state.billed_creates += 1
        if fault is not None and fault.kind in LOST_ANSWER_KINDS:
            return await self._misbehave(fault, receive)
        return response

    async def _misbehave(self, fault: Fault, receive: Receive) -> SimResponse | None:
        if fault.kind == "status":
            assert fault.status is not None
            if fault.body is not None:
                headers = {**self.vendor.error_headers.get(fault.status, {}), **fault.headers}
                return SimResponse(fault.status, fault.body.encode(), headers=headers)
            return self.vendor.error_response(SimError(fault.status, headers=fault.headers))
        if fault.kind == "malformed":
            body = fault.body.encode() if fault.body is not None else MALFORMED_BODY
            return SimResponse(200, body, headers=fault.headers)
        if fault.kind in ("hang", "accept_hang"):
            if self.state.closing is None:
                self.state.closing = asyncio.Event()
            if await wait_for_disconnect(receive, self.state.closing):
                return None
        await reset_connection(receive)
        return None
