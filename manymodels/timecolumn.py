"""The time column of a table as it arrives: text dates parsed, numbers (period indexes) kept,
and the two ways text times go wrong named rather than reported as "not dates".

Kept apart from ``manymodels.data`` (reading and checking a whole table) because an append's
new rows (``appended_rows``), a retrain's posted rows (``serving.retrain_rows``) and scoring's
calendar columns (``scoring.calendar_columns``) parse their times the same way. Whether new
rows' times are of the kept rows' kind is ``appended_times``'; a future table's dates are
``date_column``'s; the wording of a bad time's row, ``time_refusals``'.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError, pandas_first_line
from manymodels.huge_numbers import coerced_numbers, is_too_large, shown, too_large
from manymodels.row_numbers import data_row, row_number
from manymodels.time_refusals import (
    coerced_times,
    first_unparsed,
    in_row,
    missing_times,
    without_position,
)


def parse_time(
    df: pd.DataFrame, column: str, *, source: str, instants: bool = False
) -> pd.DataFrame:
    """Text dates become datetimes; numbers (period indexes) stay as they are. ``instants``:
    text of several UTC offsets (a zone's times across a change of clocks) is read as the
    UTC instants it names, for a reader that knows the zone (a version's series); without
    it such text is refused, as a table to train from names no zone."""
    s = df[column]
    if isinstance(s.dtype, pd.ArrowDtype) and str(s.dtype).startswith("date"):
        # a Parquet DATE read with dtype_backend="pyarrow": dates to pandas, datetime.date
        # objects to numpy, which every later step then failed on ("float() argument…")
        s = pd.to_datetime(s)
        df = df.assign(**{column: s})
    if ptypes.is_bool_dtype(s) and s.notna().any():  # a CSV's True/False, a Parquet bool:
        raise _boolean(s, _first_at(s, lambda v: True), column, source=source)  # periods 0, 1
    if s.dtype == object:  # JSON rows: numbers, booleans and text side by side
        s = _numbers_or_text(s, column, source=source)
        df = df.assign(**{column: s}) if s.dtype != object else df
    if ptypes.is_numeric_dtype(s) or ptypes.is_datetime64_any_dtype(s):
        if s.isna().any():
            raise DataError(missing_times(s.isna().to_numpy(), column, source=source))
        _refuse_beyond_nanoseconds(s, column, source=source)
        _refuse_infinite(s, column, source=source)
        return df
    try:
        parsed = pd.to_datetime(s, format="ISO8601")
    except (ValueError, TypeError) as e:
        mixed = ("mixed timezones", "mixed time zones", "cannot mix tz-aware with tz-naive")
        if not any(m in str(e).lower() for m in mixed):
            numbers = _numbers_then_text(s)
            if numbers is not None:
                raise DataError(f"{source}: time column '{column}' {numbers}") from None
            where = first_unparsed(s, partial(coerced_times, dated=True))
            raise DataError(
                f"{source}: time column '{column}' is not dates or numbers{where} "
                f"({without_position(pandas_first_line(e))})"
            ) from None
        _refuse_offsets_and_none(s, column, source=source)
        parsed = _instants(s) if instants else None
        if parsed is None:
            raise DataError(
                f"{source}: time column '{column}' holds times of more than one UTC offset "
                "(a time zone across a change of daylight saving time?): text keeps the "
                "offset, not the zone; give the table as Parquet, which keeps the zone, or "
                "the times in UTC"
            ) from None
    if parsed.isna().any():
        raise DataError(missing_times(parsed.isna().to_numpy(), column, source=source))
    _refuse_beyond_nanoseconds(parsed, column, source=source)
    return df.assign(**{column: parsed})


def _numbers_then_text(s: pd.Series) -> str | None:
    """What is wrong with a column of text times whose first is a period number (``1``, not
    a date as ``2024`` may be): its first cell that is no number, and where both are, or
    None. A CSV's ``1`` beside ``soon`` was named as the bad cell ("'1' in row 1 … is not
    ISO8601"), a date being all it was looked at as. On the error path only."""
    present = s.notna().to_numpy()
    if not present.any():
        return None
    first = int(np.flatnonzero(present)[0])
    head = s.iloc[[first]]
    if pd.isna(coerced_numbers(head).iloc[0]):
        return None
    # ISO8601 reads -1 as the year -1: a signed number is a relative period, never a date
    signed = str(head.iloc[0]).lstrip().startswith("-")
    if not signed and not pd.isna(pd.to_datetime(head, format="ISO8601", errors="coerce").iloc[0]):
        return None  # 2024 or 20240105: a date as well, the column left to be read as dates
    bad = np.flatnonzero(present & coerced_numbers(s).isna().to_numpy())
    if not len(bad):
        return None
    at = int(bad[0])
    return (
        f"is not dates or numbers: its first time is the period number {shown(s.iloc[first])} "
        f"(data row {row_number(first)}), and {shown(s.iloc[at])} {in_row(at)} is no number: give "
        "every time as a period number, or every one as a date"
    )


def _instants(s: pd.Series) -> pd.Series | None:
    """Text of several UTC offsets as the UTC instants it names, or ``None`` when pandas
    cannot read it so."""
    try:
        return pd.to_datetime(s, format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        return None


def _refuse_beyond_nanoseconds(s: pd.Series, column: str, *, source: str) -> None:
    """``DataError`` for a date that nanoseconds since 1970 cannot hold (before 1677-09-22
    or after 2262-04-11), naming the first: pandas parses 9999-12-31 (a data warehouse's
    "no end" placeholder) or 0001-01-01 in microseconds, and every step after this one
    counts times in nanoseconds (frequency, lags, splits), where it raised
    ``OutOfBoundsDatetime``: a 500 of a retrain's JSON rows, a traceback of ``train``."""
    if not ptypes.is_datetime64_any_dtype(s):
        return
    naive = s.dt.tz_convert(None) if getattr(s.dt, "tz", None) is not None else s
    beyond = ((naive < pd.Timestamp.min) | (naive > pd.Timestamp.max)).to_numpy()
    if beyond.any():
        at = int(np.flatnonzero(beyond)[0])
        raise DataError(
            f"{source}: time column '{column}' holds {s.iloc[at]}, {in_row(at)}: dates must "
            "fall between 1677-09-22 and 2262-04-11 "
            "(a placeholder date such as 9999-12-31?)"
        )


def _refuse_infinite(s: pd.Series, column: str, *, source: str) -> None:
    """``DataError`` for an infinite period number (JSON's ``Infinity``, a CSV's ``inf``): the
    spacing of times (``infer_frequency``) subtracted it from itself, NaN, and under ``-W
    error`` a retrain's rows were a 500."""
    if not ptypes.is_float_dtype(s):
        return
    infinite = np.isinf(s.to_numpy(dtype=np.float64))
    if infinite.any():
        at = int(np.flatnonzero(infinite)[0])
        raise DataError(
            f"{source}: time column '{column}' holds {s.iloc[at]} {in_row(at)}: a time must "
            "be a finite number or a date"
        )


def _numbers_or_text(s: pd.Series, column: str, *, source: str) -> pd.Series:
    """An object column of times as numbers when every value is one (periods), as it is
    otherwise; a boolean, or numbers beside text, is a ``DataError``: pandas would parse the
    numbers as dates by a rule it is changing (to instants since 1970). Judged by the
    values' types (one pass in C), so a long column costs no Python loop."""
    given = s.dropna()
    kinds = set(given.map(type).unique())
    if any(issubclass(k, bool | np.bool_) for k in kinds):
        at = _first_at(s, lambda v: isinstance(v, bool | np.bool_))
        raise _boolean(s, at, column, source=source)
    numeric = {k for k in kinds if issubclass(k, int | float | np.number)}
    huge = given[[is_too_large(v) for v in given]] if int in kinds else given[:0]
    if len(huge):  # pd.to_numeric raised OverflowError: a traceback
        at = int(np.flatnonzero(s.index == huge.index[0])[0])
        raise DataError(
            f"{source}: " + too_large(f"time column '{column}'", huge.iloc[0], data_row(at))
        )
    if kinds and numeric == kinds:
        numbers = pd.to_numeric(s)
        if numbers.dtype == object:  # an integer past int64 that a float holds (31 digits)
            raise _beyond_int64(s, column, source=source)
        return numbers
    if numeric:
        number = _first_at(s, lambda v: type(v) in numeric)
        text = _first_at(s, lambda v: type(v) not in numeric)
        value = s.iloc[number]  # a numpy scalar's repr is "np.int64(3)": shown as 3
        value = shown(value.item() if isinstance(value, np.generic) else value)
        raise DataError(
            f"{source}: time column '{column}' holds the number {value} beside "
            f"text: {value} in data row {row_number(number)}, {shown(s.iloc[text])} "
            f"{in_row(text)}; give every time as a date, or every one as a period number"
        )
    return s


def _beyond_int64(s: pd.Series, column: str, *, source: str) -> DataError:
    """A period past int64 (a CSV's 31 digits), which ``pd.to_numeric`` left object: parsed
    as dates, the refusal named the first cell ("not dates or numbers: 0 in row 1")."""
    at = _first_at(s, lambda v: type(v) is int and not -(2**63) <= v < 2**63)
    return DataError(
        f"{source}: time column '{column}' holds {shown(s.iloc[at])} {in_row(at)}: a period "
        "number must fit a signed 64-bit integer"
    )


def _boolean(s: pd.Series, at: int, column: str, *, source: str) -> DataError:
    """The refusal of a time column's boolean at position ``at``: neither a date nor a period
    number, though pandas counts a boolean column numeric (it trained as periods 0 and 1,
    which an append of the same column then refused: ``appended_times.refuse_other_times``)."""
    return DataError(
        f"{source}: time column '{column}' holds {bool(s.iloc[at])!r}, a boolean, "
        f"{in_row(at)}: give dates or period numbers"
    )


def _first_at(s: pd.Series, test: Callable[[Any], bool]) -> int:
    """The position of ``s``'s first present value that passes ``test``: a walk, on the
    error path only (the refusals named no row, so a bad cell in a long column was searched
    by hand). Empty cells are passed over, as the types judged were the present values'."""
    present = s.notna().to_numpy()
    return next(i for i, v in enumerate(s.tolist()) if present[i] and test(v))


def _refuse_offsets_and_none(s: pd.Series, column: str, *, source: str) -> None:
    """Times with a UTC offset beside times without one: which the first one without is. A
    walk over the distinct values, on the error path only."""
    kinds: dict[bool, Any] = {}
    for value in s.dropna().unique():
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            return
        if stamp is not pd.NaT:  # an empty cell has no offset to compare
            kinds.setdefault(stamp.tzinfo is None, value)
        if len(kinds) == 2:
            where = int(np.flatnonzero((s == kinds[True]).to_numpy())[0])
            raise DataError(
                f"{source}: time column '{column}' holds times with a UTC offset and times "
                f"without one, the first {kinds[True]!r} {in_row(where)}: give every time with "
                "its offset, or none"
            )
