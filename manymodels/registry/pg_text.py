"""Text PostgreSQL cannot hold: a NUL character, refused as bad input rather than a crash.

PostgreSQL's ``text`` cannot contain NUL (``\\x00``), and psycopg refuses a parameter holding
one before it is sent (``psycopg.DataError``). SQLite takes it, so on SQLite ``GET
/v1/runs/ab%00c`` was a 404 and ``?prefix=a%00`` an empty page, but on PostgreSQL each was a
500 "internal server error" with a traceback in the router's log — a client's mistake reported
as the server's, on every route that looks a run, a job, a failure or a page of partitions up
by text, and on a promotion whose ``reason`` held one. The same value can never match a row
(no row can hold it), so it is the request that is wrong: the engine turns that error into a
``DataError`` naming the value (a 422 from the router, an ``error:`` line from the CLI), once,
for every statement, instead of a check in each route that takes text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from manymodels.exceptions import DataError

SHOWN = 60  # characters of the offending value the message shows


def refuse_nul_text(engine: Engine) -> None:
    """Install the translation on a PostgreSQL ``engine``."""
    event.listen(engine, "handle_error", _nul_text)


def _nul_text(context: ExceptionContext) -> None:
    error = context.original_exception
    if type(error).__module__.split(".")[0] != "psycopg" or "NUL (0x00)" not in str(error):
        return
    value = next(_with_nul(context.parameters), None)
    said = "" if value is None else f" {value[:SHOWN]!r}{'…' if len(value) > SHOWN else ''}"
    raise DataError(
        f"text{said} holds a NUL character (\\x00), which a PostgreSQL registry can neither "
        "store nor look up"
    ) from None


def _with_nul(parameters: Any) -> Iterator[str]:
    """Each string value holding a NUL, in a statement's parameters (a mapping, a sequence,
    or a list of either for an executemany)."""
    if isinstance(parameters, str):
        if "\x00" in parameters:
            yield parameters
    elif isinstance(parameters, dict):
        for value in parameters.values():
            yield from _with_nul(value)
    elif isinstance(parameters, list | tuple):
        for value in parameters:
            yield from _with_nul(value)
