"""Where a time column's bad cell is, in the words every refusal of times uses: its data row
counted from 1 (``in_row``), the first value a parse cannot read (``first_unparsed``, by
``coerced_times``' parse), how many times are missing (``missing_times``), and pandas' reason
without its "at position 4" (counted from 0).

Apart from ``timecolumn`` because four readers of times refuse with them: a table's time
column (``timecolumn``), a future table's dates (``date_column``) and numbers
(``future_rows``), and appended rows' times (``appended_times``); one wording for all, for a
user who greps an error or a test that matches one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from manymodels.huge_numbers import coerced_numbers, shown
from manymodels.row_numbers import data_row


def in_row(position: int) -> str:
    """Where a table's bad cell is, as the project's other errors count rows (data rows from
    1, the header not counted): a table of thousands of rows is not searched by hand."""
    return f"in {data_row(position)}"


def missing_times(missing: np.ndarray, column: str, *, source: str) -> str:
    """The error of a time column with empty cells: how many, and the first one's row."""
    rows = np.flatnonzero(missing)
    return (
        f"{source}: time column '{column}' has missing values ({len(rows)} row(s)), the first "
        f"{in_row(int(rows[0]))}"
    )


def without_position(text: str) -> str:
    """pandas' reason without its "at position 4": it counts from 0, beside our row that
    counts from 1 (the same cell then read as two)."""
    return re.sub(r",? at position \d+", "", text)


def first_unparsed(s: pd.Series, coerce: Callable[[pd.Series], Any]) -> str:
    """``": '2024-13-45' in data row 5 (counting from 1)"``: the first present value
    that ``coerce`` (a parse with ``errors="coerce"``) makes missing, or "" when none is
    found that way (then pandas' reason is all there is). One vectorized parse, on the error
    path only."""
    try:
        parsed = np.asarray(pd.isna(coerce(s)), dtype=bool)
    except (ValueError, TypeError, OverflowError):
        return ""
    refused = np.flatnonzero(s.notna().to_numpy() & parsed)
    if not len(refused):
        return ""
    return f": {shown(s.iloc[int(refused[0])])} {in_row(int(refused[0]))}"


def coerced_times(values: pd.Series, *, dated: bool) -> Any:
    """The time column parsed with every value it cannot parse missing (a number past a
    float's range too, which ``pd.to_numeric`` raises on even so)."""
    if dated:
        return pd.to_datetime(values, format="ISO8601", errors="coerce")
    return coerced_numbers(values)
