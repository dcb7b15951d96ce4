"""Tests for manymodels.next_periods: the cached next periods of a last time are
``timefeatures.advance``'s own, whatever the reach, zone or holidays, and a row's time (text
or number) is placed among them as ``timekeys.time_key`` reads it."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from manymodels import timefeatures
from manymodels.next_periods import CACHED_REACH, as_keys, step, upcoming

SERIES = [
    ("2024-03-29", "B", None, ("2024-04-01",)),  # business days over a holiday
    ("2024-03-30T00:00:00+01:00", "D", "Europe/Berlin", ()),  # daily across a DST change
    ("2024-03-30T22:00:00+01:00", "h", "Europe/Berlin", ()),  # hourly across it
    ("2024-03-30T00:00:00+01:00", "3h", "Europe/Berlin", ()),  # local 3-hourly
    ("2024-01-31", "ME", None, ()),
    ("2024-12-20", "C-Mon Tue Wed Thu", None, ("2024-12-25",)),
    (7, 2, None, ()),  # numbered periods
    (29.5, 0.5, None, ()),
]


@pytest.mark.parametrize("reach", [1, 3, 8, 9, 40, 200, CACHED_REACH + 1])
@pytest.mark.parametrize(("last", "frequency", "zone", "off"), SERIES)
def test_cached_periods_are_the_uncached_ones(
    last: Any, frequency: Any, zone: str | None, off: tuple[str, ...], reach: int
) -> None:
    """Filling a table a partition at a time reuses the next periods of a last time, kept
    for a reach rounded up to a power of two: cut back, they are ``advance``'s own."""
    direct = as_keys(timefeatures.advance([last], frequency, reach, zone, off))
    assert list(upcoming(last, frequency, reach, zone, list(off)).keys) == direct
    assert list(upcoming(last, frequency, reach, zone, list(off)).keys) == direct  # from the cache


def test_a_rows_time_is_placed_as_text_or_as_a_timestamp() -> None:
    periods = upcoming("2024-03-29", "B", 3, None, ["2024-04-01"])  # 04-02, 04-03, 04-04
    assert step("2024-04-03", periods, "B", False) == 2
    assert step(pd.Timestamp("2024-04-03"), periods, "B", False) == 2
    assert step("2024-04-01", periods, "B", False) is None  # the holiday is no period
    assert step("2024-04-03T00:00:00+00:00", periods, "B", False) is None  # an offset its
    # series lacks is not one of its periods
    assert step(32, upcoming(30, 1, 3, None, []), 1, False) == 2
    assert step("32", upcoming(30, 1, 3, None, []), 1, False) == 2


def test_a_time_past_the_reach_is_no_period_though_the_cache_holds_it() -> None:
    """The cache keeps 8 periods for a reach of 3: the 4th is not one of the 3."""
    assert step(33, upcoming(29, 1, 8, None, []), 1, False) == 4  # kept for reach 8
    assert step(33, upcoming(29, 1, 3, None, []), 1, False) is None
    assert step(32, upcoming(29, 1, 3, None, []), 1, False) == 3
