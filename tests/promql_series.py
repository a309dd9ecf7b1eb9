"""Which series a PromQL expression reads, and which series a metrics registry exports.

Shared by the dashboard and alert-rule checks: a query on a series nobody exports shows an empty
panel, or an alert that can never fire, without any error.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

_SUFFIXES_BY_TYPE = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                 "unless", "offset", "inf", "nan", "atan2"}


def exported_series(registry: CollectorRegistry) -> set[str]:
    """Series names a registry exposes, whether or not a labelled metric has a child yet."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES_BY_TYPE[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels left out)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^{}]*\}", "", expr)
    expr = re.sub(r"\[[^\[\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(?!\s*\()", expr):
        if match.group(1).lower() not in _PROMQL_WORDS:
            names.add(match.group(1))
    return names



def worker_registry_series() -> set[str]:
    """The series the GPU worker exports (its registry is per instance)."""
    from backends.local.worker_metrics import WorkerMetrics

    return exported_series(WorkerMetrics().registry)


