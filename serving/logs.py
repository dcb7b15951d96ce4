"""The router's logs: written by a background thread, so a request pays only for queueing.

An access line per request cost 15–90 µs of the event loop (``json.dumps`` of the line and a
locked write to stderr), up to a fifth of a hot request. Here the loop only creates the log
record and puts it on a queue (``logging.handlers.QueueHandler``); a ``QueueListener`` thread
formats it as JSON and writes it. ``--no-access-log`` turns the per-request line off.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from typing import Any

ACCESS = "manymodels.serving.access"


class JsonLine:
    """A log message that becomes JSON only when written (on the listener's thread)."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return json.dumps(self.fields, default=str)


class _Deferred(QueueHandler):
    """A QueueHandler that leaves formatting to the listener: the stock ``prepare`` formats
    the message on the caller's thread, which is the event loop."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def start(*, access_log: bool = True, stream: Any = None) -> QueueListener:
    """Route ``manymodels.serving`` logs through a queue to ``stream`` (stderr); returns the
    running listener, which the caller stops (flushing what is queued) at shutdown."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(lines, handler, respect_handler_level=False)
    served = logging.getLogger("manymodels.serving")
    served.handlers = [_Deferred(lines)]
    served.setLevel(logging.INFO)
    served.propagate = False
    logging.getLogger(ACCESS).setLevel(logging.INFO if access_log else logging.WARNING)
    listener.start()
    return listener
