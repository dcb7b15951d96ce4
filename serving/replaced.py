"""A registry file replaced under a running router is said, not served from silently.

A user who ``mv``\\ s a new ``registry.db`` onto the old one's name, or swaps a symlinked
registry directory (a restored backup, a registry trained elsewhere), expects the router to
serve it. (``cp`` over the open file keeps its inode and is not seen here: SQLite then reads
the new bytes beside the old ``-wal``, one of its ways to corrupt a database — never copy
over a registry in use.) SQLite keeps
the file it opened: the router's pooled connections went on reading the old one, and the
incremental alias refresh (``serving.aliases``) would not re-read the new file's older stamps
nor drop keys it lacks, so the router served the old file's models forever, without a word.
Reopening in place is not safe here: the model cache is keyed by ``(partition, version)``, a
number the new file may give to another model, and the new file may be of another schema
(``Registry.open`` migrates or refuses it), so everything the router holds would have to be
rebuilt under requests in flight. A restart does exactly that.

Nor does it go on half on each file. SQLite's pool (``make_engine``: 5 kept, 10 more under
load) opens each new connection by the path: after ``mv other/registry.db registry.db``, 12
concurrent reads answered 5 from the new file and 7 from the old; and a connection on the new
file beside the old one's ``-wal`` and ``-shm`` is how SQLite says a database is corrupted
(https://www.sqlite.org/howtocorrupt.html, 2.4). Nor can a SQLite file be held by its inode
(a ``/proc/self/fd/N`` path): its ``-wal`` and ``-shm`` are found by the path's name. So the
router opens a connection only onto the file it first opened (``only_the_opened_file``):
where the path leads to another file, or none, the connection is refused before SQLite reads
or creates anything, and the request answers 503 saying why; the connections already open go
on answering from the old file.

So each alias refresh, and each readiness check (in its ping's thread, under its time
bound: ``serving.readiness``), compares the file's identity (device and
inode: one ``stat``, O(1)) with the one the router opened; while they differ the router logs a
warning once and ``/readyz`` (and ``/v2/health/ready``) answer "not ready", saying to restart
it. The path watched is the one the user named (``--registry cur``), not the one it led to:
a registry put in place by pointing a symlink at it (``ln -sfn reg-new cur``, the atomic swap)
is a replaced file too. A PostgreSQL registry, or an in-memory one, has no file to watch.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from manymodels.exceptions import RegistryError
from manymodels.registry.engine import sqlite_file
from manymodels.registry.location import DB_FILE

logger = logging.getLogger("manymodels.serving")


def _identity(path: str) -> tuple[int, int] | None:
    """The file's ``(device, inode)``; ``None`` where there is no file at ``path``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class RegistryFileWatch:
    """``follow()`` (a ``Refresher`` companion): ``why_not`` says whether the registry file at
    the path the router opened is still the one it opened."""

    def __init__(self, db_url: str, root: Path | None = None) -> None:
        self.path = watched_path(db_url, root)
        self.opened = _identity(self.path) if self.path is not None else None
        self.why_not: str | None = None  # set while the file is another, or gone
        self._lock = threading.Lock()  # the refresher and the readiness ping both follow

    def follow(self) -> str | None:
        """Compare the file's identity with the opened one; log a change once. Called from
        threads only (a ``stat`` may hang on a network filesystem), one at a time."""
        if self.path is None or self.opened is None:
            return None
        with self._lock:
            return self._follow(self.path, self.opened)

    def _follow(self, path: str, opened: tuple[int, int]) -> str | None:
        now = _identity(path)
        if now == opened:
            why = None
        elif now is None:
            why = (
                f"the registry's database file {os.path.basename(path)} was moved or "
                "deleted since the router opened it: it answers only from the database "
                "connections it has open, and refuses what needs another; put it back, or "
                "restart the router on a registry"
            )
        else:
            why = (
                f"the registry's database file {os.path.basename(path)} was replaced "
                "since the router opened it: it answers only from the old file, on the "
                "database connections it has open, and refuses what needs another; restart "
                "the router to serve the new file"
            )
        if why != self.why_not:
            if why is not None:
                logger.warning("%s (%s)", why, path)
            else:
                logger.info("the registry's database file is the one opened again")
            self.why_not = why
        return why


def only_the_opened_file(engine: Engine, db_url: str) -> None:
    """Refuse each new connection of ``engine`` that would not be onto the SQLite file it
    opened (the module's docstring says why): checked before connecting (a missing file is not
    created) and again once connected (a file replaced meanwhile is not read). Costs two
    ``stat``\\ s per new connection; the pool keeps its connections, so not per request."""
    path = sqlite_file(db_url)
    opened = _identity(path) if path is not None else None
    if path is None or opened is None:
        return
    name = os.path.basename(path)

    def refuse_another(dbapi_connection: Any = None) -> None:
        if _identity(path) == opened:
            return
        if dbapi_connection is not None:
            dbapi_connection.close()
        raise RegistryError(
            f"the registry's database file {name} was replaced, moved or deleted since the "
            "router opened it: it does not open the file now there; restart the router"
        )

    @event.listens_for(engine, "do_connect")  # not run for a read-only engine's creator,
    def _before(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> None:  # which
        refuse_another()  # creates no file: its own check for one comes first

    @event.listens_for(engine, "connect", insert=True)  # before the pragmas read the file
    def _after(dbapi_connection: Any, _record: Any) -> None:
        refuse_another(dbapi_connection)


def watched_path(db_url: str, root: Path | None) -> str | None:
    """The path of the SQLite file ``db_url`` names, as reached from the registry directory
    ``root`` (``Registry.root``: absolute, its symlinks kept) when that is where it is: the
    registry opens ``registry.db`` by its resolved path, and a ``cur -> reg-new`` symlink
    swapped under the router left that path, and so its file, unchanged — /readyz said 200
    while the router served the old registry. ``None`` for no file (PostgreSQL, in-memory)."""
    opened = sqlite_file(db_url)
    if opened is None or root is None:
        return opened
    given = os.path.join(root, DB_FILE)
    return given if os.path.realpath(given) == os.path.realpath(opened) else opened
