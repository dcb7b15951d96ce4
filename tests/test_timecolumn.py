"""The time column as it arrives (``manymodels.timecolumn``): an object column of JSON values
read as periods or refused, and each bad time named by its row. (New rows' times held to the
kind the kept rows are: tests/test_appended_times.py.)"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.exceptions import DataError
from manymodels.timecolumn import parse_time


def parsed(values: list[Any]) -> list[Any]:
    frame = pd.DataFrame({"t": pd.Series(values, dtype=object)})
    return list(parse_time(frame, "t", source="rows")["t"].tolist())


def test_an_object_column_of_numbers_is_periods_and_of_text_dates() -> None:
    assert parsed([29, 30]) == [29, 30]
    assert parsed([29.0, 30]) == [29.0, 30.0]
    assert parsed(["2025-01-06", "2025-01-13"]) == [
        pd.Timestamp("2025-01-06"), pd.Timestamp("2025-01-13")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ([29, True], "holds True, a boolean"),
        ([29, "2025-01-06"], "holds the number 29 beside text"),
        (["2025-01-06", None], "has missing values"),
    ],
)
def test_booleans_and_numbers_beside_text_are_refused(values: list[Any], says: str) -> None:
    """pandas parsed such numbers as dates, by a rule it is changing to instants of 1970."""
    with pytest.raises(DataError, match=says):
        parsed(values)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ([29, None, True], "holds True, a boolean, in data row 3 (counting from 1): give"),
        (
            [None, "2025-01-06", 29],
            "holds the number 29 beside text: 29 in data row 3, '2025-01-06' in data row 2 "
            "(counting from 1); give every time",
        ),
        (
            [float("nan"), 2, {"a": 1}],
            "holds the number 2 beside text: 2 in data row 2, {'a': 1} in data row 3 (counting",
        ),
        (  # a frame's cell set to a numpy scalar: was "np.int64(3)", twice
            [np.int64(3), "2025-01-06"],
            "holds the number 3 beside text: 3 in data row 1, '2025-01-06' in data row 2 (counting",
        ),
    ],
)
def test_a_boolean_or_numbers_beside_text_name_their_rows(values: list[Any], says: str) -> None:
    """Refused with no row ("holds True, a boolean: give dates or period numbers", "holds the
    number 29 beside text"), where every other time error names its first cell's: the cells,
    named in the words of the other time errors, empty cells counted as rows."""
    with pytest.raises(DataError, match=re.escape(f"rows: time column 't' {says}")):
        parsed(values)


@pytest.mark.parametrize(
    ("column", "row"),
    [
        (pd.Series([True, False, True]), 1),
        (pd.Series([None, False, True], dtype="boolean"), 2),
        (pd.Series([True, False], dtype="bool[pyarrow]"), 1),
    ],
    ids=["a CSV's True/False", "nullable", "Parquet's boolean"],
)
def test_a_column_of_booleans_is_refused_as_a_boolean_among_numbers_is(
    column: pd.Series, row: int
) -> None:
    """A column all of booleans (a CSV's ``True``/``False``, a Parquet boolean) is numeric to
    pandas: `train` took it as periods 0 and 1 and trained, where one ``True`` among numbers
    is refused, and so is an append of the same column to those periods."""
    first = column.dropna().iloc[0]
    said = f"rows: time column 't' holds {bool(first)!r}, a boolean, in data row {row} (counting"
    with pytest.raises(DataError, match=re.escape(said)):
        parse_time(pd.DataFrame({"t": column}), "t", source="rows")


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (
            ["2025-01-06", "2025-01-13", None, None],
            r"missing values \(2 row\(s\)\), the first in data row 3 ",
        ),
        ([29.0, 30.0, float("nan")], r"missing values \(1 row\(s\)\), the first in data row 3 "),
        (
            ["2025-01-06", "2025-01-13", "2024-13-45", "soon"],
            r"is not dates or numbers: '2024-13-45' in data row 3 \(counting from 1\) ",
        ),
    ],
)
def test_a_bad_time_is_named_by_its_row(values: list[Any], says: str) -> None:
    """Before: "time column 't' has missing values" and "… is not dates or numbers (Time data
    2024-13-45 is not ISO8601 format.)" — which of a table's thousands of rows was left to
    find by hand. Rows count as the project's other errors count them (data rows from 1)."""
    frame = pd.DataFrame({"t": pd.Series(values)})
    with pytest.raises(DataError, match=says):
        parse_time(frame, "t", source="rows")


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (["2025-01-06", "9999-12-31"], "9999-12-31 00:00:00, in data row 2 (counting from 1)"),
        (["0001-01-01", "2025-01-06"], "holds 0001-01-01 00:00:00, in data row 1"),
        (
            pd.Series(pd.to_datetime(["2025-01-06", "9999-12-31"])).dt.tz_localize("UTC"),
            "holds 9999-12-31 00:00:00+00:00, in data row 2",
        ),  # as a Parquet file's zone-aware timestamps arrive
        (pd.Series(pd.to_datetime(["2025-01-06", "2300-01-01"]).as_unit("ms")), "in data row 2"),
        ([1, 10**400], "time column 't' is too large a number (1000"),
        # a CSV's 31 digits: pd.to_numeric left the column object, parsed as dates, and the
        # refusal named row 1's 0 ("not dates or numbers: 0 in row 1")
        ([0, 10**30, 2], f"holds {10**30} in data row 2 (counting from 1): a period"),
        ([-1, 2**63, 2], f"holds {2**63} in data row 2 (counting from 1): a period"),
        ([1.0, float("inf")], "holds inf in data row 2 (counting from 1): a time must be"),
    ],
    ids=[
        "9999-12-31",
        "0001-01-01",
        "zone-aware",
        "datetime64[ms]",
        "huge integer",
        "past int64",
        "past int64 beside a negative",
        "inf",
    ],
)
def test_a_time_beyond_nanoseconds_or_floats_is_refused_naming_it(values: Any, says: str) -> None:
    """Every step after parsing counts times in nanoseconds since 1970 (frequency, lags,
    splits): a date past 2262-04-11 or before 1677-09-22 (a warehouse's 9999-12-31 "no end")
    raised OutOfBoundsDatetime there — a traceback of ``train``, a 500 of a retrain's rows —
    and an infinite period made a NaN spacing. Now each is refused here, naming the first."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    frame = pd.DataFrame({"t": series})
    if not isinstance(values, pd.Series) and isinstance(values[0], float):
        frame = frame.astype({"t": "float64"})
    with pytest.raises(DataError, match=re.escape(says)):
        parse_time(frame, "t", source="rows")
    if isinstance(values, list) and isinstance(values[0], str):  # within the range: as ever
        assert parsed(["1677-09-22", "2262-04-11"])[1] == pd.Timestamp("2262-04-11")


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (["1", "soon"], "'1' (data row 1), and 'soon' in data row 2 (counting from 1) is no"),
        (["1", "2", "2024-01-06"], "'1' (data row 1), and '2024-01-06' in data row 3 (counting"),
        ([None, "1.5", "soon"], "'1.5' (data row 2), and 'soon' in data row 3 (counting"),
        # relative periods: ISO8601 reads '-1' as the year -1, so '0' was named the bad cell
        (["-1", "0", "soon"], "'-1' (data row 1), and 'soon' in data row 3 (counting"),
        (["-1.5", "soon"], "'-1.5' (data row 1), and 'soon' in data row 2 (counting"),
    ],
)
def test_text_times_that_begin_as_period_numbers_name_the_first_that_is_none(
    values: list[Any], says: str
) -> None:
    """A CSV's time column of ``1`` beside ``soon`` is read as text: it was parsed as dates
    only, and its first cell named as the bad one ("'1' in row 1 … is not ISO8601")."""
    frame = pd.DataFrame({"t": pd.Series(values, dtype=object)})
    with pytest.raises(
        DataError,
        match=re.escape(f"'t' is not dates or numbers: its first time is the period number {says}"),
    ):
        parse_time(frame, "t", source="rows")


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (["2024", "soon"], "'soon' in data row 2"),  # a year: a date too, so the column is dates
        (["2024-01-06", "1"], "'1' in data row 2"),
        (["soon", "1"], "'soon' in data row 1"),
    ],
)
def test_text_times_that_begin_as_dates_name_the_first_that_is_none(
    values: list[Any], says: str
) -> None:
    frame = pd.DataFrame({"t": pd.Series(values, dtype=object)})
    with pytest.raises(DataError, match=re.escape(f"is not dates or numbers: {says} (counting")):
        parse_time(frame, "t", source="rows")
