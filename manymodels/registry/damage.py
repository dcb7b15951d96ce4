"""A SQLite registry file damaged past its first pages, said in one line.

Opening a registry reads its schema from the first pages only, so a file cut short or
overwritten further in (a copy interrupted, a disk that lost blocks) opens, and the damage
shows on the first read of a table it reaches: SQLite's ``database disk image is malformed``
surfaced from every command as SQLAlchemy's ``DatabaseError`` — a 70-line traceback from
``models list``, ``doctor``, ``monitor`` and ``gc``. It is neither a bad input nor an outage to
retry (``database_away``), so it is translated here, where the database's path is known, into a
``RegistryError`` naming the file and what to do.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from manymodels.exceptions import RegistryError, first_line

# SQLite's names for a file whose bytes are not a sound database (its extended codes included)
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def watch_damage(engine: Engine, where: str) -> None:
    """Make every statement of ``engine`` that finds its SQLite file damaged raise one
    ``RegistryError`` naming ``where``, in place of SQLAlchemy's ``DatabaseError``."""

    @event.listens_for(engine, "handle_error")
    def _damaged(context: Any) -> None:
        error = context.original_exception
        if not isinstance(error, sqlite3.DatabaseError):
            return
        if not str(getattr(error, "sqlite_errorname", "")).startswith(_DAMAGED):
            return
        raise RegistryError(
            f"registry database {where} is damaged ({first_line(error)}): restore it from a "
            "backup ('manymodels import-registry'); 'sqlite3 FILE .recover' may save what is left"
        ) from context.sqlalchemy_exception
