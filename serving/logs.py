"""The router's logs: written by a background thread, so a request pays only for queueing.

An access line per request cost 15–90 µs of the event loop (``json.dumps`` of the line and a
locked write to stderr), up to a fifth of a hot request. Here the loop only creates the log
record and puts it on a queue (``logging.handlers.QueueHandler``); a ``QueueListener`` thread
formats it as JSON and writes it. ``--no-access-log`` turns the per-request line off.

In a Ray Serve replica (``start_in_replica``) the listener hands each record to Serve's own
replica logger instead of stderr, which nobody reads there (the replica's stderr goes to a
worker log, and INFO lines were dropped for want of a handler): it lands in the replica's log
file, ``logs/serve/replica_<app>_router_<id>.log`` under the node's Ray session, beside
Serve's lines and in the format the deployment's ``logging_config`` gives them.

Every message is written on one line: control characters in it (a path's decoded ``%0A``, a
partition key's, an exception's text quoting either) are escaped as ``\\n``, ``\\x1b``…
on the listener's thread. The error line of a 5xx carried the decoded URL path as it came, so
a request for ``/v1/x%0A<a line of one's own>`` wrote a second, forged, log line.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from typing import Any

from manymodels.oneline import one_line
from serving import job_pool

ACCESS = "manymodels.serving.access"


class JsonLine:
    """A log message that becomes JSON only when written (on the listener's thread)."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return json.dumps(self.fields, default=str)


class _OneLine(QueueListener):
    """A listener that writes each message on one line (see the module docstring); a
    traceback, ``logger.exception``'s, still follows on lines of its own."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg, record.args = one_line(record.getMessage()), None
        return record


class _Deferred(QueueHandler):
    """A QueueHandler that leaves formatting to the listener: the stock ``prepare`` formats
    the message on the caller's thread, which is the event loop."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def start(
    *, access_log: bool = True, stream: Any = None, handler: logging.Handler | None = None
) -> QueueListener:
    """Route ``manymodels.serving`` logs through a queue to ``handler`` (by default one
    writing to ``stream``, stderr); returns the running listener, which the caller stops
    (flushing what is queued) at shutdown."""
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = _OneLine(lines, handler, respect_handler_level=False)
    served = logging.getLogger("manymodels.serving")
    served.handlers = [_Deferred(lines)]
    served.setLevel(logging.INFO)
    served.propagate = False
    logging.getLogger(ACCESS).setLevel(logging.INFO if access_log else logging.WARNING)
    listener.start()
    return listener


SERVE_LOGGER = "ray.serve"


class _ToServe(logging.Handler):
    """Hands a record to Ray Serve's logger, whose handlers (set up by Serve in each replica,
    and set again when the deployment's ``logging_config`` changes) format and write it."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(SERVE_LOGGER).handle(record)


def start_in_replica(*, access_log: bool) -> QueueListener:
    """``start`` in a Ray Serve replica: the lines go to the replica's log file (see the
    module docstring); what is queued is written when the replica's process exits.

    The listener stops at exit only after the retrain jobs' bounded exit wait
    (``job_pool.exit_wait``): ``atexit`` runs the last registered hook first, and this one is
    registered after ``job_pool``'s, so a bare ``listener.stop`` stopped the listener before
    that wait, and the lines a job logged while the exit waited for it were dropped."""
    listener = start(access_log=access_log, handler=_ToServe())

    def stop_after_jobs() -> None:
        job_pool.exit_wait()
        listener.stop()

    atexit.register(stop_after_jobs)
    return listener
