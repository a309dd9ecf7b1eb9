"""Loopback simulators of the five vendors, speaking each one's wire format (as the adapters in
``backends.vendors`` describe it).

They serve the ``make run`` demo when no vendor key is set, drive the benchmarks, and let tests
inject faults (``Fault``) into a real HTTP exchange. Start one with
``SimulatorServer("runflow").start()`` or all with ``start_simulators()``; from a shell,
``python -m backends.simulators``.
"""

from __future__ import annotations

from backends.simulators.config import RESPONSE_SHAPES, SimulatorConfig
from backends.simulators.faults import FAULT_KINDS, Fault
from backends.simulators.recording import RecordedRequest
from backends.simulators.server import SimulatorServer, start_simulators, stop_simulators
from backends.simulators.vendors import VENDORS

__all__ = [
    "FAULT_KINDS",
    "RESPONSE_SHAPES",
    "VENDORS",
    "Fault",
    "RecordedRequest",
    "SimulatorConfig",
    "SimulatorServer",
    "start_simulators",
    "stop_simulators",
]
