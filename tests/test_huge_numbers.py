"""``huge_numbers``: one parse and one way of showing a cell for every door's message."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from manymodels.exceptions import DataError
from manymodels.features import column_values
from manymodels.huge_numbers import coerced_numbers, shown
from manymodels.time_refusals import first_unparsed


def test_coerced_numbers_reads_text_numbers_beside_an_integer_past_float() -> None:
    # pandas raises OverflowError on the integer even with errors="coerce"; the fallback
    # must read the text "7" as 7, as the vectorized path does
    out = coerced_numbers(pd.Series([10**400, "7", "abc", None], dtype=object))
    assert math.isnan(out[0]) and out[1] == 7.0 and math.isnan(out[2]) and math.isnan(out[3])


def test_a_text_number_beside_a_huge_integer_is_not_named_as_the_stray_value() -> None:
    column = pd.Series([1.5, "7", "abc", 10**400], dtype=object)
    with pytest.raises(DataError) as e:
        column_values(column, numeric=True, name="price", source="x.csv")
    # before: "'7' in data row 2 ..., 3 such value(s)": the fallback read "7" as no number
    assert str(e.value) == (
        "x.csv: data row 3 (counting from 1): feature 'price' must be a number, not text 'abc' "
        "(and 1 more such value(s))"
    )


def test_a_cell_past_pythons_digit_limit_is_shown_by_its_size() -> None:
    huge = 10**5000  # repr() raises ValueError past 4,300 digits
    assert shown(huge) == "an integer of about 5000 digits"
    column = pd.Series([1.5, huge, "abc"], dtype=object)
    with pytest.raises(DataError) as e:  # before: ValueError from repr(), a traceback
        column_values(column, numeric=True, name="price", source="x.csv")
    assert str(e.value).startswith(
        "x.csv: data row 2 (counting from 1): feature 'price' is too large a number (an integer "
        "of about 5000 digits): it does not fit a float"
    )
    where = first_unparsed(pd.Series([3, huge], dtype=object), coerce=coerced_numbers)
    assert where.startswith(": an integer of about 5000 digits")
