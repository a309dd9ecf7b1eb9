"""One log format for every boltgate process: human lines by default, JSON lines by setting.

Everything goes through the root logger's one handler: boltgate's own loggers, uvicorn's (its
"Uvicorn running on ..." and "Application startup complete" lines, the drain on SIGTERM, its
errors), the vendor simulators', the GPU worker's and any library's, Python warnings included.
A record's structured fields travel in ``extra={"fields": {...}}``: the human format appends
them as ``key=value``, the JSON format as keys of the line's object::

    2026-12-01 10:00:00.123 INFO boltgate.access: POST /v1/images/generations 200 request_id=9f2c... backend=runflow
    {"time": "2026-12-01T10:00:00.123Z", "level": "INFO", "logger": "boltgate.access", "message": "...", ...}

The built-in vendor simulators run uvicorn in threads named ``simulator-<vendor>``; their
informational lines (five more "Uvicorn running on ...") would bury the gateway's own and are
dropped, their warnings and errors are kept.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Literal, TextIO

import orjson

LogFormat = Literal["human", "json"]
FIELDS = "fields"
"""The ``extra`` key that carries a record's structured fields."""
SIMULATOR_THREAD_PREFIX = "simulator-"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, FIELDS, None)
    return fields if isinstance(fields, dict) else {}


def _timestamp(record: logging.LogRecord, separator: str, zone: str) -> str:
    seconds = time.strftime(f"%Y-%m-%d{separator}%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}{zone}"


class HumanFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message> key=value ...`` and the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record, ' ', '')} {record.levelname} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{name}={_human(value)}" for name, value in _fields(record).items() if value is not None)
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _human(value: object) -> str:
    text = str(value)
    return repr(text) if not text or any(char.isspace() or char in "\"'=" for char in text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _timestamp(record, "T", "Z"), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage()}
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class QuietSimulators(logging.Filter):
    """Drops the simulators' informational lines; keeps their warnings and errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not (record.threadName or "").startswith(SIMULATOR_THREAD_PREFIX)


class BoltgateHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler (a class of its own, so that configuring twice replaces it)."""


def configure_logging(level: str = "info", log_format: LogFormat = "human", *, stream: TextIO | None = None) -> None:
    """Send every logger's records through one handler in ``log_format``, at ``level`` and above."""
    handler = BoltgateHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else HumanFormatter())
    handler.addFilter(QuietSimulators())
    root = logging.getLogger()
    for old in [old for old in root.handlers if isinstance(old, BoltgateHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a library's warnings (torch, diffusers in the worker) too, not bare stderr
    for name in UVICORN_LOGGERS:  # uvicorn's own handlers and levels would make a second format
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
