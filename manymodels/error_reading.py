"""Reading an error raised anywhere (ours, a library's, the operating system's): what it was
raised from (``causes``), whether it says the storage is full (``storage_full``) or the
registry's database cannot be reached now (``database_away``), and the one line a user is
shown of it (``first_line``, ``short_message``, ``error_text``; ``problem``: one bad cell of
a request, as a 422 lists it).

Beside ``exceptions`` rather than in it: that module is the tree of the errors manymodels
raises; these read any error. ``from manymodels.exceptions import first_line`` still works
(re-exported: the exceptions module is a public import path).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

# a disk, or a quota, is full; EDQUOT is not defined everywhere
FULL_ERRNOS = frozenset(n for n in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if n)
POSTGRESQL_DISK_FULL = "53100"  # SQLSTATE disk_full


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then each error it was raised from (``raise … from``, or raised while handling:
    not past a ``from None``), once each: what a wrapped error says underneath ours or
    SQLAlchemy's."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context


def storage_full(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the storage written to is full:
    ``OSError`` ENOSPC or EDQUOT (an artifact, a temporary file), SQLite's ``SQLITE_FULL``, or
    PostgreSQL's ``disk_full`` — wrapped as they may be in our errors or SQLAlchemy's
    (``.orig``). A full disk is neither a conflict nor an outage to retry at once."""
    for current in causes(error):
        for e in (current, getattr(current, "orig", None)):
            if isinstance(e, OSError) and e.errno in FULL_ERRNOS:
                return True
            if getattr(e, "sqlite_errorname", None) == "SQLITE_FULL":
                return True
            if getattr(e, "sqlstate", None) == POSTGRESQL_DISK_FULL:
                return True
    return False


# the errors that say a database cannot be reached or used now, by module (``database_away``)
_AWAY = {
    "sqlalchemy.exc": ("OperationalError", "InterfaceError", "TimeoutError"),
    "sqlite3": ("OperationalError", "InterfaceError"),
}


def database_away(*, loaded: bool = False) -> tuple[type[Exception], ...]:
    """What says the registry's database cannot be reached or used now (a server stopped,
    restarting or frozen, a connection dropped, a pool timeout): SQLAlchemy's wrapped
    ``OperationalError`` / ``InterfaceError`` / ``TimeoutError``, and SQLite's own, raised
    unwrapped by a raw connection. One list for the router's 503, the retry of a job's write
    and the CLI's one line (psycopg's own are left out: importing it would cost every router
    that does not use PostgreSQL 0.14 s; the registry wraps a raw connection's in its errors).

    ``loaded``: only those of modules already imported, importing none. A command that never
    loaded SQLAlchemy raised none of its errors, and a read-only command imports nothing heavy
    to find that out."""
    import sys

    if not loaded:
        import sqlite3  # noqa: F401  (both, to look them up below)

        import sqlalchemy.exc  # noqa: F401
    return tuple(
        getattr(sys.modules[module], name)
        for module, names in _AWAY.items()
        if module in sys.modules
        for name in names
    )


FIRST_LINE_CHARS = 1000


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none: libraries
    append multi-line hints to their errors, and a user is shown one line. Cut to
    ``FIRST_LINE_CHARS``: pandas quotes the value it could not read ("Time data xxx… doesn't
    match"), and a forecast's 5 MB time text was a 5 MB 422."""
    text = str(error).strip()
    line = text.splitlines()[0].strip() if text else type(error).__name__
    return line if len(line) <= FIRST_LINE_CHARS else line[:FIRST_LINE_CHARS] + "…"


def problem(row: int, column: str | None, msg: str, kind: str = "value_error") -> dict[str, Any]:
    """One bad cell (or row, without ``column``) of a request, in the shape FastAPI gives its
    own 422s: ``{"loc": ["body", "rows", row, column], "msg": …, "type": …}``."""
    loc: list[Any] = ["body", "rows", row]
    if column is not None:
        loc.append(column)
    return {"loc": loc, "msg": msg, "type": kind}


def pandas_first_line(error: BaseException) -> str:
    """``first_line`` without the "You might want to try:" that pandas ends some lines with."""
    return first_line(error).removesuffix("You might want to try:").strip()


def short_message(error: BaseException) -> str:
    """At most 500 characters of the first line; empty for an error without a message (its
    type is recorded beside it)."""
    return first_line(error)[:500] if str(error).strip() else ""


def error_text(error: BaseException) -> str:
    """``Type: first line`` of an error, as recorded for a candidate or a champion."""
    return f"{type(error).__name__}: {short_message(error)}"
