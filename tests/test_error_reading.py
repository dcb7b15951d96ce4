"""Reading any error (``manymodels.error_reading``): moved out of ``manymodels.exceptions``,
the tree of our own errors, and still importable from there, a public import path."""

from __future__ import annotations

import errno

import pytest

import manymodels.exceptions as ex
from manymodels import error_reading

MOVED = [
    "FIRST_LINE_CHARS", "FULL_ERRNOS", "POSTGRESQL_DISK_FULL", "causes", "database_away",
    "error_text", "first_line", "pandas_first_line", "problem", "short_message", "storage_full",
]  # fmt: skip


@pytest.mark.parametrize("name", MOVED)
def test_the_old_import_path_still_names_each_helper(name: str) -> None:
    assert getattr(ex, name) is getattr(error_reading, name)


def test_a_full_disk_under_our_error_is_read_through_it() -> None:
    """``storage_full`` follows ``raise … from`` to the ``OSError`` underneath a DataError,
    and ``error_text`` tells the error by its type and first line."""
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as e:
            raise ex.DataError("could not write the table\nhint: free some space") from e
    except ex.DataError as wrapped:
        assert error_reading.storage_full(wrapped)
        assert error_reading.error_text(wrapped) == "DataError: could not write the table"
    assert not error_reading.storage_full(ex.DataError("bad column"))
