"""One log format: human lines or JSON lines, fields included, the simulators' chatter left out."""

from __future__ import annotations

import io
import logging
import threading
import warnings

import orjson

from core.logs import FIELDS, BoltgateHandler, configure_logging


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_human_line_has_time_level_logger_message_and_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "human", stream=stream)

    logging.getLogger("boltgate.access").info("POST %s", "/v1/images/generations",
                                              extra={FIELDS: {"status": 200, "backend": "runflow", "user": None,
                                                              "prompt": "a red fox"}})

    (line,) = lines(stream)
    assert line.endswith(" INFO boltgate.access: POST /v1/images/generations status=200 backend=runflow "
                         "prompt='a red fox'")
    assert line[:4].isdigit() and line[4] == "-"


def test_a_json_line_is_one_object_with_the_fields_as_keys() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)

    logging.getLogger("boltgate.access").info("GET /healthz", extra={FIELDS: {"status": 200}})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("boltgate").exception("it failed")

    first, second = (orjson.loads(line) for line in lines(stream))
    assert (first["level"], first["logger"], first["message"], first["status"]) == (
        "INFO", "boltgate.access", "GET /healthz", 200)
    assert first["time"].endswith("Z")
    assert "ValueError: boom" in second["exception"]


def test_uvicorns_loggers_write_through_the_one_handler() -> None:
    stream = io.StringIO()
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # what a simulator's uvicorn used to do
    configure_logging("info", "human", stream=stream)

    logging.getLogger("uvicorn.error").info("Application startup complete.")

    (line,) = lines(stream)
    assert line.endswith("INFO uvicorn.error: Application startup complete.")


def test_the_simulators_informational_lines_are_left_out_their_warnings_kept() -> None:
    stream = io.StringIO()
    configure_logging("info", "human", stream=stream)

    def simulator() -> None:
        logging.getLogger("uvicorn.error").info("Uvicorn running on http://127.0.0.1:1")
        logging.getLogger("backends.simulators").warning("fault injected")

    thread = threading.Thread(target=simulator, name="simulator-runflow")
    thread.start()
    thread.join()

    assert [line.split(" ", 2)[2] for line in lines(stream)] == ["WARNING backends.simulators: fault injected"]


def test_configuring_twice_leaves_one_handler_at_the_new_level() -> None:
    configure_logging("info", "human", stream=io.StringIO())
    configure_logging("warning", "json", stream=io.StringIO())

    root = logging.getLogger()
    assert len([handler for handler in root.handlers if isinstance(handler, BoltgateHandler)]) == 1
    assert root.level == logging.WARNING


def test_python_warnings_are_lines_in_the_one_format() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)

    warnings.warn_explicit("the VAE overflows in float16", UserWarning, "diffusers.py", 1)

    record = orjson.loads(lines(stream)[-1])
    assert record["logger"] == "py.warnings" and record["level"] == "WARNING"
    assert "the VAE overflows in float16" in record["message"]
