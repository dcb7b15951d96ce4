"""Tests for serving.logs: access lines are formatted and written off the event loop."""

from __future__ import annotations

import io
import json
import logging
import threading

from serving import logs


class _Where:
    """Records the thread that turns it into text (json.dumps' default=str)."""

    def __init__(self) -> None:
        self.thread: str | None = None

    def __str__(self) -> str:
        self.thread = threading.current_thread().name
        return "here"


def test_the_line_is_formatted_on_the_log_thread_not_the_callers() -> None:
    stream = io.StringIO()
    listener = logs.start(stream=stream)
    where = _Where()
    try:
        logging.getLogger(logs.ACCESS).info("%s", logs.JsonLine({"status": 200, "w": where}))
    finally:
        listener.stop()  # flushes the queue
        logging.getLogger("manymodels.serving").handlers = []
        logging.getLogger("manymodels.serving").propagate = True
        logging.getLogger(logs.ACCESS).setLevel(logging.NOTSET)
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line[line.index("{") :]) == {"status": 200, "w": "here"}
    assert where.thread is not None and where.thread != threading.current_thread().name


def test_no_access_log_keeps_other_router_logs() -> None:
    stream = io.StringIO()
    listener = logs.start(access_log=False, stream=stream)
    try:
        logging.getLogger(logs.ACCESS).info("%s", logs.JsonLine({"status": 200}))
        logging.getLogger("manymodels.serving.app").info("router ready")
    finally:
        listener.stop()
        logging.getLogger("manymodels.serving").handlers = []
        logging.getLogger("manymodels.serving").propagate = True
        logging.getLogger(logs.ACCESS).setLevel(logging.NOTSET)
    assert "router ready" in stream.getvalue() and "status" not in stream.getvalue()
