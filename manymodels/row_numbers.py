"""A bad cell's row as the user counts it: data rows from 1 in its file, the header not counted.

A table read whole counts from its first row. A Parquet dataset is checked one record batch
(``datasets.BATCH_ROWS``) at a time, and each batch's rows are numbered from 0 again: a bad
time in row 100,000 of a file was named "in row 34464". The reader sets where the batch
begins in its file (``rows_after``), and every message that names a row counts from there.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_before: contextvars.ContextVar[int] = contextvars.ContextVar("rows_before", default=0)


def row_number(position: int) -> int:
    """The 1-based row in its file of the row at ``position`` of the rows being checked."""
    return _before.get() + position + 1


@contextmanager
def rows_after(offset: int) -> Iterator[None]:
    """Number the rows checked within as following ``offset`` rows of their file."""
    token = _before.set(offset)
    try:
        yield
    finally:
        _before.reset(token)


def data_row(position: int) -> str:
    """``row_number``'s row as messages name it: "data row 6 (counting from 1)"."""
    return counted_row(row_number(position))


def counted_row(number: int) -> str:
    """A row already counted from 1 as every refusal names it: "data row 6 (counting from
    1)". Refusals of time columns and of words in a target said "row 6 (counting data rows
    from 1)" for the same row the others called "data row 6 (counting from 1)": one wording,
    made here, for a user who greps an error or a test that matches one."""
    return f"data row {number} (counting from 1)"
