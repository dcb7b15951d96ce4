"""Bulk INSERTs of tuples through a statement compiled once: ``record()``'s fast path.

Apart from the store because it knows nothing of it: a connection, a table and tuples in,
the same rows stored as ``conn.execute(insert(table), dicts)`` would store them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, Dialect


class _BulkInsert(NamedTuple):
    sql: str
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, bind processor)


@functools.lru_cache(maxsize=64)  # bounded: it keeps every engine's dialect it has seen alive
def _bulk_insert(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _BulkInsert | None:
    """``INSERT INTO table (columns)`` compiled once for a positional-paramstyle dialect
    (SQLite's ``qmark``), or ``None`` where rows must go through ``conn.execute``: a named
    paramstyle, or a compiled column order that differs from ``columns``."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    if not dialect.positional or tuple(compiled.positiontup or ()) != columns:
        return None
    processors = tuple(
        (i, proc)
        for i, name in enumerate(columns)
        if (proc := table.c[name].type.bind_processor(dialect)) is not None
    )
    return _BulkInsert(compiled.string, processors)


def _insert_rows(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """``executemany`` of ``rows`` (tuples in ``columns`` order) into ``table``.

    ``conn.execute(insert(table), dicts)`` builds and processes a parameter dict per row
    (~3 µs for ``model_versions``): at 1,000 rows per statement and three such statements
    per chunk, a sizeable share of the driver's ``record()``. Here the INSERT is compiled
    once and the DBAPI gets the tuples as they are, after the same bind processors
    SQLAlchemy applies (SQLite's ``Float`` → ``float``). Errors are still SQLAlchemy's
    (``exec_driver_sql`` wraps them), so the transaction's error translation is unchanged.
    """
    plan = _bulk_insert(conn.dialect, table, columns)
    if plan is None:
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    if plan.processors:
        rows = [_processed(row, plan.processors) for row in rows]
    conn.exec_driver_sql(plan.sql, rows)


def _processed(
    row: tuple[Any, ...], processors: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    values = list(row)
    for i, proc in processors:
        values[i] = proc(values[i])
    return tuple(values)
