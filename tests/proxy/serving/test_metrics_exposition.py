"""``/metrics`` with several workers: every gauge says how workers combine."""

from __future__ import annotations

from prometheus_client import Gauge

import proxy.metrics


def test_every_gauge_names_how_workers_combine() -> None:
    gauges = [value for value in vars(proxy.metrics).values() if isinstance(value, Gauge)]
    assert gauges
    for gauge in gauges:
        # "all" (the default) would export one series per worker pid instead of the pod's value.
        assert gauge._multiprocess_mode != "all", gauge._name
