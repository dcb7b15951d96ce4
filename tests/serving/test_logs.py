"""Tests for serving.logs: access lines are formatted and written off the event loop."""

from __future__ import annotations

import io
import json
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from routerkit import feature_rows

from serving import logs
from serving.local import running_server
from serving.service import ModelService
from serving.settings import Settings


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


def test_a_path_with_control_characters_cannot_forge_a_log_line(
    registry_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error line of a 5xx carried the URL path decoded: a newline stays ``%0A`` there
    (``serving.keys`` keeps it for routing), but a vertical tab (``%0B``), a line or
    paragraph separator (``%E2%80%A8``) or a terminal escape (``%1B``) came through as it
    was, and a log read by line (a terminal, ``str.splitlines``, a collector) showed a line of
    the requester's choosing, here one that looks like the router's own. Each message is now
    one line, its control characters escaped. The 5xx is provoked as ``test_router_app``
    does: a bug in scoring."""

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    forged = "2026-12-05 09:00:00,000 INFO manymodels.serving router ready"
    stream = io.StringIO()
    listener = logs.start(stream=stream, access_log=False)
    try:
        monkeypatch.setattr(ModelService, "score_partition", boom)
        with running_server(Settings(registry=registry_path)) as url:
            path = f"/v1/partitions/x%0B{quote(forged)}%E2%80%A8{quote(forged)}%1B/predict"
            path += "?version=1"
            r = httpx.post(url + path, json={"rows": feature_rows(1)})
            assert r.status_code == 500, r.text
    finally:
        listener.stop()
        logging.getLogger("manymodels.serving").handlers = []
        logging.getLogger("manymodels.serving").propagate = True
        logging.getLogger(logs.ACCESS).setLevel(logging.NOTSET)
    lines = stream.getvalue().splitlines()
    assert not any(line.startswith(forged) for line in lines), lines
    (failed,) = [line for line in lines if "failed" in line and "/v1/partitions/x" in line]
    assert f"/v1/partitions/x\\x0b{forged}\\u2028{forged}\\x1b/predict failed" in failed
