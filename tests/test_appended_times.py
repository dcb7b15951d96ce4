"""New rows' times held to the kind a partition's kept rows are
(``manymodels.appended_times``): dates, whole or fractional period numbers, a UTC offset or
none, each refusal naming the first bad time's row."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from manymodels.appended_times import refuse_other_times
from manymodels.exceptions import DataError


def test_new_times_are_held_to_the_kept_rows_kind() -> None:
    dates = pd.Series(pd.to_datetime(["2025-01-06"]))
    zoned = dates.dt.tz_localize("UTC")
    periods = pd.Series([30, 31])
    refuse_other_times(dates, "t", dates=True, aware=False)
    refuse_other_times(zoned, "t", dates=True, aware=True)
    refuse_other_times(periods, "t", dates=False, aware=False, whole=True)
    refuse_other_times(periods.astype(float), "t", dates=False, aware=False, whole=True)
    for new, kind, says in [
        (periods, {"dates": True, "aware": False}, "holds 30, a number, in data row 1 "),
        (dates, {"dates": False, "aware": False}, "holds dates"),
        (zoned, {"dates": True, "aware": False}, "with a UTC offset"),
        (dates, {"dates": True, "aware": True}, "without a UTC offset"),
        (pd.Series([True]), {"dates": False, "aware": False}, "holds True, a boolean"),
        (pd.Series([31.5]), {"dates": False, "aware": False, "whole": True}, "holds 31.5"),
    ]:
        with pytest.raises(DataError, match=re.escape(says)):
            refuse_other_times(new, "t", **kind)


@pytest.mark.parametrize(
    ("new", "kind", "says"),
    [
        (
            pd.Series([30.0, 31.0, 31.5, 32.5]),
            {"dates": False, "whole": True},
            "holds 31.5 in data row 3 (counting from 1), where the partition's kept rows "
            "hold whole period numbers",
        ),
        (
            pd.Series([30, 31]),
            {"dates": True},
            "holds 30, a number, in data row 1 (counting from 1), where the partition's "
            "kept rows hold dates: send dates",
        ),
        (
            pd.Series(pd.to_datetime(["2025-01-06", "2025-01-13"])),
            {"dates": False},
            "holds dates (2025-01-06 00:00:00) in data row 1 (counting from 1), where",
        ),
        (
            pd.Series(pd.to_datetime(["2025-01-06"])).dt.tz_localize("UTC"),
            {"dates": True},
            "holds times with a UTC offset (UTC), the first in data row 1 (counting from "
            "1), where the kept rows' have none",
        ),
        (
            pd.Series(pd.to_datetime(["2025-01-06"])),
            {"dates": True, "aware": True},
            "holds times without a UTC offset, the first in data row 1 (counting from 1), "
            "where the kept rows' have a zone",
        ),
        (
            pd.Series([True, False]),
            {"dates": False},
            "holds True, a boolean, in data row 1 (counting from 1), where the partition's",
        ),
    ],
    ids=["fraction", "number", "dates", "offset", "no offset", "boolean"],
)
def test_new_times_of_another_kind_name_their_row(
    new: pd.Series, kind: dict[str, bool], says: str
) -> None:
    """Refused naming no row ("holds 31.5, where the partition's kept rows hold whole period
    numbers"), where training's time errors name the first bad cell's: the row now, in the
    same words; a fraction's own row among whole periods."""
    kind = {"aware": False} | kind
    with pytest.raises(DataError, match=re.escape(f"rows.csv: time column 't' {says}")):
        refuse_other_times(new, "t", source="rows.csv", **kind)
