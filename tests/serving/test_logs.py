"""Tests for serving.logs: access lines are formatted and written off the event loop."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
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


_REPLICA_EXIT = """
import logging, sys, time
from serving import logs
from serving.job_pool import DaemonPool

serve = logging.getLogger(logs.SERVE_LOGGER)  # as Ray Serve sets it up in a replica
serve.addHandler(logging.StreamHandler(sys.stdout))
serve.setLevel(logging.INFO)
logs.start_in_replica(access_log=True)
pool = DaemonPool(1, thread_name_prefix="retrain", exit_seconds=30)

def job():
    time.sleep(0.5)  # still running when the process starts to exit
    logging.getLogger("manymodels.serving.jobs").info("the job's last line")

pool.submit(job)
"""


def test_a_replicas_job_logging_during_the_exit_wait_is_written(tmp_path: Path) -> None:
    """A Ray Serve replica exiting with a retrain job running: the exit waits for the job
    (``job_pool``'s bounded wait), and the lines the job logs meanwhile reach the log. Before,
    ``start_in_replica``'s ``listener.stop``, registered with ``atexit`` after that wait and
    so run before it, had stopped the listener: the job's lines were dropped. A real process
    exit, as the replica's."""
    program = tmp_path / "replica.py"
    program.write_text(_REPLICA_EXIT)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "the job's last line" in done.stdout, (done.stdout, done.stderr)
