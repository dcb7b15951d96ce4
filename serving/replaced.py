"""A registry file replaced under a running router is said, not served from silently.

A user who copies a new ``registry.db`` over the old one, or ``mv``\\ s one onto its name (a
restored backup, a registry trained elsewhere), expects the router to serve it. SQLite keeps
the file it opened: the router's pooled connections went on reading the old one, and the
incremental alias refresh (``serving.aliases``) would not re-read the new file's older stamps
nor drop keys it lacks, so the router served the old file's models forever, without a word.
Reopening in place is not safe here: the model cache is keyed by ``(partition, version)``, a
number the new file may give to another model, and the new file may be of another schema
(``Registry.open`` migrates or refuses it), so everything the router holds would have to be
rebuilt under requests in flight. A restart does exactly that.

So each alias refresh, and each readiness check, compares the file's identity (device and
inode: one ``stat``, O(1)) with the one the router opened; while they differ the router logs a
warning once and ``/readyz`` (and ``/v2/health/ready``) answer "not ready", saying to restart
it. The path watched is the one the user named (``--registry cur``), not the one it led to:
a registry put in place by pointing a symlink at it (``ln -sfn reg-new cur``, the atomic swap)
is a replaced file too. A PostgreSQL registry, or an in-memory one, has no file to watch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from starlette.requests import Request

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

    def follow(self) -> str | None:
        """Compare the file's identity with the opened one; log a change once."""
        if self.path is None or self.opened is None:
            return None
        now = _identity(self.path)
        if now == self.opened:
            why = None
        elif now is None:
            why = (
                f"the registry's database file {os.path.basename(self.path)} was moved or "
                "deleted since the router opened it: it still serves the models it had; put "
                "it back, or restart the router on a registry"
            )
        else:
            why = (
                f"the registry's database file {os.path.basename(self.path)} was replaced "
                "since the router opened it: it still serves the old file's models; restart "
                "the router to serve the new file"
            )
        if why != self.why_not:
            if why is not None:
                logger.warning("%s (%s)", why, self.path)
            else:
                logger.info("the registry's database file is the one opened again")
            self.why_not = why
        return why


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


def replaced_file(request: Request) -> str | None:
    """Why the registry file the router serves from is no longer the one at its path
    (``RegistryFileWatch``); ``None`` while it is, and before start. Looked at now (one
    ``stat``), not as the last refresh found: a refresh that fails on the new file (another
    schema, not a registry) stops before its companions run."""
    watch = getattr(request.app.state, "registry_file", None)
    return None if watch is None else watch.follow()
