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

from manymodels.exceptions import (
    ReadOnlyRegistry,
    VersionConflict,
    causes,
    database_away,
    first_line,
)

logger = logging.getLogger("manymodels.serving.jobs")

T = TypeVar("T")
FIRST_WAIT = 0.25  # seconds before the first retry; each next wait doubles, up to ``cap``


def transient(error: BaseException) -> bool:
    """Whether ``error`` says the registry database cannot be written now but may be soon: a
    server down, a connection dropped, a lock held past its timeout, a pool timeout
    (``manymodels.error_reading.database_away``), raised as they are or under the registry's errors.
    Not a refusal that would only repeat: read-only, a conflict, something not found, a
    missing table or a bad statement (retried for ever, a bug would hold a worker)."""
    if isinstance(error, ReadOnlyRegistry | VersionConflict | LookupError):
        return False
    chain = list(causes(error))
    for found in chain:  # SQLite's OperationalError is also "no such table", a bad statement
        if type(found).__module__ == "sqlite3" and hasattr(found, "sqlite_errorname"):
            return str(found.sqlite_errorname).startswith(_SQLITE_AWAY)
        if str(getattr(found, "sqlstate", None) or "").startswith(_PG_LIMITS):
            return False
    down = database_away()
    return any(
        isinstance(found, down) or _DRIVERS_DOWN & {c.__name__ for c in type(found).__mro__}
        for found in chain
    )


# SQLite's codes for a database busy or locked by another, or a disk that failed or filled;
# not a read-only file, a file that is not a database, a statement too big or a misuse
_SQLITE_AWAY = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL",
                "SQLITE_CANTOPEN", "SQLITE_PROTOCOL")  # fmt: skip
# PostgreSQL's "program limit exceeded" (an index row too large…): an OperationalError in
# psycopg that no retry gets past
_PG_LIMITS = ("54",)

# psycopg's own and their subclasses (LockNotAvailable), raised unwrapped by a raw connection
# (importing psycopg here would cost a router that does not use PostgreSQL its import)
_DRIVERS_DOWN = frozenset({"OperationalError", "InterfaceError"})


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
