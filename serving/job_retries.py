"""Writing a retrain job's start and end through a registry database that may be away for a
moment: PostgreSQL restarting, a connection dropped, the ``jobs`` table locked by another
session past the lock timeout.

One failed write used to lose the job: a start that failed dropped the queued job (it read
"queued" until another router failed it, "router restarted", though this one never stopped),
and an end that failed left a job whose version production already served to be failed the
same way. ``retried`` writes again after each such failure, waiting longer each time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from manymodels.exceptions import ReadOnlyRegistry, RegistryError, VersionConflict, first_line

logger = logging.getLogger("manymodels.serving.jobs")

T = TypeVar("T")
FIRST_WAIT = 0.25  # seconds before the first retry; each next wait doubles, up to ``cap``


def transient(error: BaseException) -> bool:
    """Whether ``error`` says the registry database cannot be written now but may be soon:
    SQLAlchemy's own errors (a server down, a connection dropped, a pool timeout) and the
    registry's wrapping of them, not a refusal that would only repeat (read-only, a conflict,
    something not found)."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(error, ReadOnlyRegistry | VersionConflict | LookupError):
        return False
    return isinstance(error, RegistryError | SQLAlchemyError)


def retried(
    write: Callable[[], T],
    *,
    what: str,
    stop: threading.Event,
    cap: float,
    patience: float | None = None,
) -> T:
    """``write()``, again after each transient failure: first after ``FIRST_WAIT`` seconds,
    then twice as long each time up to ``cap``, until it succeeds, ``patience`` seconds have
    passed (``None``: no end) or ``stop`` is set — then the last error is raised. Another
    error is raised at once."""
    deadline = math.inf if patience is None else time.monotonic() + patience
    wait = FIRST_WAIT
    while True:
        try:
            return write()
        except Exception as e:
            left = deadline - time.monotonic()
            if not transient(e) or left <= 0 or stop.is_set():
                raise
            pause = min(wait, cap, left)
            logger.warning("%s failed; retrying in %.2g s: %s", what, pause, first_line(e))
            if stop.wait(pause):
                raise
            wait = min(wait * 2, cap)
