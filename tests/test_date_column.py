"""A time column that must hold dates (``manymodels.date_column``): a future table's times,
those that all carry a UTC offset read as the instants they name, one without among them
refused naming it."""

from __future__ import annotations

import pandas as pd
import pytest

from manymodels.date_column import parse_dates
from manymodels.exceptions import DataError


@pytest.mark.parametrize("alone", ["2024-03-30", "2024-03-31", "2024-03-31T03"])
def test_a_date_alone_among_times_with_offsets_is_no_time_with_an_offset(alone: str) -> None:
    """A date's own day (``-30`` of "2024-03-30") was read as a UTC offset of -30 hours, so
    a column of times with offsets and one date alone was read as UTC instants, the date as
    UTC midnight (an hour or two from the zone's midnight it stands for), where any other
    time without its offset is refused as "must hold dates"; the refusal names the time
    without an offset (it was pandas' "Mixed timezones detected. Pass utc=True …")."""
    said = rf"must hold dates: '{alone}' in data row 2 \(counting from 1\) has no UTC offset"
    with pytest.raises(DataError, match=said):
        parse_dates(pd.Series(["2024-03-31T00:00:00+01:00", alone], name="t"), source="x")
    # a blank cell has no offset to carry, in a column of pandas' text dtype too
    blank = pd.Series(["2024-03-31T00:00:00+01:00", None, f"{alone[:10]}T04:00+02:00"], dtype="str")
    assert parse_dates(blank.rename("t"), source="x")[1] is pd.NaT
    both = pd.Series(["2024-03-31T00:00:00+01:00", f"{alone[:10]}T05:00:00.5-02:00"], name="t")
    assert [t.isoformat() for t in parse_dates(both, source="x")] == [
        "2024-03-30T23:00:00+00:00",
        f"{(pd.Timestamp(alone[:10]) + pd.Timedelta(hours=7, milliseconds=500)).isoformat()}+00:00",
    ]
