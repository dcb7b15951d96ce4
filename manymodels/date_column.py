"""A time column that must hold dates: a dated version's future times (``future_rows``).

Apart from ``timecolumn`` (a table's time column, where numbers are period indexes) because
here a number is refused, not kept, and text times that all carry a UTC offset (a zone's
times across a change of daylight saving time) are read as the UTC instants they name.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import partial

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError, pandas_first_line
from manymodels.huge_numbers import shown
from manymodels.time_refusals import coerced_times, first_unparsed, in_row, without_position


def parse_dates(values: pd.Series, *, source: str) -> pd.DatetimeIndex:
    """A column that must hold dates (a dated version's future times) as datetime64[ns];
    ``DataError`` for a number or a boolean among them, or text that is no ISO 8601 time.
    Numbers were handed to ``pd.to_datetime(format="ISO8601")``, which read 20250101 as the
    text "20250101" (and 2025 as 2025-01-01) with a ``Pandas4Warning``: under ``-W error``
    that warning was a 500, and pandas 4 reads such numbers as instants since 1970. As
    ``appended_times.refuse_other_times`` refuses a retrain's numbers where the kept rows hold
    dates, these are refused, naming the first."""
    column = values.name
    cells = values.dropna() if values.dtype == object else values
    if values.dtype == object:
        stray = cells[[isinstance(v, bool | int | float | np.number) for v in cells]]
    else:
        is_dates = ptypes.is_datetime64_any_dtype(values)
        stray = cells if not is_dates and not ptypes.is_string_dtype(values) else cells[:0]
    if len(stray):
        first = stray.iloc[0]
        first = first.item() if isinstance(first, np.generic) else first
        raise DataError(
            f"{source}: time column '{column}' holds {first!r}, a "
            f"{'boolean' if isinstance(first, bool) else 'number'}, where the version's times "
            "are dates: give dates as text (such as 2025-02-24)"
        )
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601")).as_unit("ns")
    except (ValueError, TypeError, OverflowError) as e:
        if _all_with_offsets(cells):  # +01:00 then +02:00: a zone's times across its change
            return pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601", utc=True)).as_unit(
                "ns"
            )
        where = first_unparsed(values, partial(coerced_times, dated=True)) or _offsetless(values)
        raise DataError(
            f"{source}: time column '{column}' must hold dates{where} "
            f"({without_position(pandas_first_line(e))})"
        ) from None


# an offset after a time of day (``T00:00+01:00``, ``00:00:00.5Z``): a date's own ``-31``
# ("2024-03-31") is no offset
_OFFSET = re.compile(
    r"[T ]\d\d(?::?\d\d(?::?\d\d(?:[.,]\d+)?)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)\s*$",
    re.IGNORECASE,
)


def _all_with_offsets(cells: pd.Series) -> bool:
    """Whether every time carries its UTC offset, as JSON's ISO text of a zone's times does:
    a future table across a change of daylight saving time (00:00+01:00, then 04:00+02:00)
    was refused as "Mixed timezones detected", where the same instants in UTC were taken.
    One without its offset among them stays refused: read as UTC, it would be an instant
    an offset away."""
    cells = cells.dropna()  # a blank cell has no time to carry an offset
    return len(cells) > 0 and all(_with_offset(v) for v in cells)


def _with_offset(value: object) -> bool:
    return (isinstance(value, str) and _OFFSET.search(value) is not None) or (
        isinstance(value, pd.Timestamp | dt.datetime) and value.tzinfo is not None
    )


def _offsetless(values: pd.Series) -> str:
    """``": '2024-03-31' in row 2 (…) has no UTC offset, where others carry one"``, for a
    column of times with and without offsets (pandas said only "Mixed timezones detected.
    Pass utc=True in to_datetime"), or "" when none or all have one."""
    has = [_with_offset(v) or v is None or v is pd.NA or v != v for v in values]  # blanks
    if not any(_with_offset(v) for v in values) or all(has):
        return ""
    at = has.index(False)
    return f": {shown(values.iloc[at])} {in_row(at)} has no UTC offset, where others carry one"
