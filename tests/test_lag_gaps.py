"""A partition whose times skip periods, with target lags in the spec, is warned of (#lags
count rows): before, a daily series missing two days trained with "lag 1" reading the target
of three days back, and nothing said so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.pipeline import train


def panel(times: dict[str, Any]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame({"shop": shop, "t": t, "x": rng.normal(size=len(t))}).assign(
            y=rng.normal(size=len(t))
        )
        for shop, t in times.items()
    ]
    return pd.concat(frames, ignore_index=True)


def spec(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "shops", "partition_by": ["shop"], "target": "y", "time_column": "t",
        "features": ["x"], "lags": [1], "validation": {"strategy": "last", "size": 4},
        "candidates": [{"estimator": "sklearn.linear_model.LinearRegression"}],
        "fallback": {"enabled": False},
    }  # fmt: skip
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def warnings_of(data: pd.DataFrame, root: Path, **overrides: Any) -> list[str]:
    summary = train(spec(**overrides), data, root, backend="local")
    assert summary.run.n_trained == len(data["shop"].unique()), summary.failures
    return [w for w in summary.run.options.get("warnings", []) if "skip periods" in w]


def test_a_daily_partition_missing_days_is_named_with_its_gap(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    gappy = days.delete([3, 4])  # January 4th and 5th
    (warning,) = warnings_of(panel({"a": days, "b": gappy, "c": days}), tmp_path / "r")
    assert warning.startswith("1 partition(s) skip periods of their 1D times, e.g. 'shop=b' ")
    assert "from 2024-01-03T00:00:00 to 2024-01-06T00:00:00" in warning, warning


def test_integer_periods_with_a_gap_are_named(tmp_path: Path) -> None:
    t = np.arange(30)
    (warning,) = warnings_of(panel({"a": t, "b": np.delete(t, 10)}), tmp_path / "r")
    assert "'shop=b' from 9 to 11" in warning, warning


@pytest.mark.parametrize(
    "times",
    [
        pd.date_range("2024-01-01", periods=30, freq="D"),
        pd.bdate_range("2024-01-01", periods=30),  # weekends are no gap of business days
        pd.date_range("2022-01-01", periods=30, freq="MS"),  # nor February's 28 days
        pd.date_range("2022-01-31", periods=30, freq="ME"),
    ],
    ids=["days", "business-days", "month-starts", "month-ends"],
)
def test_complete_series_are_not_warned_of(tmp_path: Path, times: pd.DatetimeIndex) -> None:
    assert warnings_of(panel({"a": times, "b": times}), tmp_path / "r") == []


def test_without_lags_a_gap_is_no_concern(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    data = panel({"a": days, "b": days.delete([3, 4])})
    assert warnings_of(data, tmp_path / "r", lags=None) == []


def _dates(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(times))  # as a table's column holds them: no freq attached


FISCAL_YEARS = _dates(pd.date_range("2001-07-01", periods=20, freq="YS-JUL"))  # was 365D
MARCH_QUARTERS = _dates(pd.date_range("2019-03-01", periods=21, freq="QS-MAR"))  # was 2196h
MONTH_ENDS = pd.date_range("2020-01-31", periods=36, freq="ME")
THIRTIETHS = _dates(MONTH_ENDS.map(lambda t: t.replace(day=min(t.day, 30))))  # 30D


@pytest.mark.parametrize(
    "times",
    [FISCAL_YEARS, MARCH_QUARTERS, THIRTIETHS],
    ids=["fiscal-years", "march-quarters", "thirtieths"],
)
def test_a_fixed_step_standing_for_a_calendar_is_no_gap(
    tmp_path: Path, times: pd.DatetimeIndex
) -> None:
    """Before, fiscal years (365 or 366 days), quarters from March (90 to 92 days) and the
    30th of each month (28 to 31 days) were each warned of as skipping periods: their
    frequency was a fixed step (365D, 2196h, 30D), and every longer step of the calendar was
    taken for a gap. (The first two are now inferred anchored, YS-JUL and QS-MAR; the 30th
    still steps by 30D.)"""
    assert warnings_of(panel({"a": times, "b": times}), tmp_path / "r") == []


@pytest.mark.parametrize(
    ("times", "drop", "shown"),
    [
        (FISCAL_YEARS, 5, "from 2005-07-01T00:00:00 to 2007-07-01T00:00:00"),
        (MARCH_QUARTERS, 5, "from 2020-03-01T00:00:00 to 2020-09-01T00:00:00"),
        (THIRTIETHS, 5, "from 2020-05-30T00:00:00 to 2020-07-30T00:00:00"),
        (
            _dates(pd.date_range("2024-01-01", periods=30, freq="MS") + pd.Timedelta(days=14)),
            5,  # MS+14D, which had no gap found before (to_offset refused it)
            "from 2024-05-15T00:00:00 to 2024-07-15T00:00:00",
        ),
        (
            _dates(pd.date_range("2024-03-25", periods=20, freq="D", tz="Europe/Berlin")),
            6,  # the day after Berlin's change to summer time (a 23-hour day)
            "from 2024-03-30T00:00:00+01:00 to 2024-04-01T00:00:00+02:00",
        ),
        (
            _dates(pd.date_range("2024-03-30", periods=72, freq="h", tz="Europe/Berlin")),
            30,
            "from 2024-03-31T06:00:00+02:00 to 2024-03-31T08:00:00+02:00",
        ),
    ],
    ids=["fiscal-years", "march-quarters", "thirtieths", "fifteenths", "dst-days", "hours"],
)
def test_a_skipped_period_of_such_calendars_is_still_named(
    tmp_path: Path, times: pd.DatetimeIndex, drop: int, shown: str
) -> None:
    data = panel({"a": times, "b": times.delete(drop)})
    (warning,) = warnings_of(data, tmp_path / "r")
    assert "'shop=b' " + shown in warning, warning


BUSINESS_2024 = pd.bdate_range("2024-01-02", "2024-12-31")
US_HOLIDAYS = pd.to_datetime(
    ["2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19", "2024-07-04",
     "2024-09-02", "2024-11-28", "2024-12-25"]
)  # fmt: skip
EASTER_UK = pd.to_datetime(["2024-03-29", "2024-04-01", "2024-12-25", "2024-12-26"])


@pytest.mark.parametrize(
    "closed", [US_HOLIDAYS, EASTER_UK], ids=["us-exchange-holidays", "good-friday-easter-monday"]
)
def test_business_days_missing_their_holidays_are_not_warned_of(
    tmp_path: Path, closed: pd.DatetimeIndex
) -> None:
    """Before, a year of a market's business days was warned of at its first holiday ("skip
    periods of their B times … add a row for each missing period"): a closed day has no row a
    user can add, and its lag 1 is the business day before, as meant."""
    open_days = BUSINESS_2024[~BUSINESS_2024.isin(closed)]
    assert warnings_of(panel({"a": BUSINESS_2024, "b": open_days}), tmp_path / "r") == []


def test_business_days_missing_a_week_or_many_days_are_still_warned_of(tmp_path: Path) -> None:
    week = (BUSINESS_2024 >= "2024-03-04") & (BUSINESS_2024 <= "2024-03-08")
    every_tenth = np.arange(len(BUSINESS_2024)) % 10 == 5  # 26 days: more than holidays
    data = panel({"a": BUSINESS_2024, "b": BUSINESS_2024[~week], "c": BUSINESS_2024[~every_tenth]})
    (warning,) = warnings_of(data, tmp_path / "r")
    assert warning.startswith("2 partition(s) skip periods of their B times, e.g. 'shop=b' ")
    assert "from 2024-03-01T00:00:00 to 2024-03-11T00:00:00" in warning, warning


def test_a_shop_closed_on_sundays_and_its_holidays_is_not_warned_of(tmp_path: Path) -> None:
    """Before, a series of Mondays to Saturdays was warned of at every Sunday (its frequency
    was 1D); now its frequency is those days (C-Mon-...-Sat) and holidays among them are
    no gap either. A week missing is still named."""
    days = pd.bdate_range("2024-01-02", "2024-06-29", freq="C", weekmask="Mon Tue Wed Thu Fri Sat")
    open_days = days[~days.isin(pd.to_datetime(["2024-03-29", "2024-04-01", "2024-05-01"]))]
    assert warnings_of(panel({"a": days, "b": open_days}), tmp_path / "r") == []
    week = (days >= "2024-03-04") & (days <= "2024-03-09")
    (warning,) = warnings_of(panel({"a": days, "b": days[~week]}), tmp_path / "r2")
    assert "C-Mon-Tue-Wed-Thu-Fri-Sat times, e.g. 'shop=b' from 2024-03-02T" in warning, warning


def test_business_days_one_partition_lacks_and_the_others_hold_are_still_warned_of(
    tmp_path: Path,
) -> None:
    """A feed down two days for one shop, while every other shop has rows on them, passed
    for two holidays and was not warned of (before business-day holidays were, it was): a
    day most partitions have a row on is no holiday of the table's market."""
    down = (BUSINESS_2024 >= "2024-06-12") & (BUSINESS_2024 <= "2024-06-13")
    shops = {s: BUSINESS_2024 for s in "abcd"} | {"e": BUSINESS_2024[~down]}
    (warning,) = warnings_of(panel(shops), tmp_path / "r")
    assert warning.startswith("1 partition(s) skip periods of their B times, e.g. 'shop=e' ")
    assert "from 2024-06-11T00:00:00 to 2024-06-14T00:00:00" in warning, warning
    closed = BUSINESS_2024[~BUSINESS_2024.isin(US_HOLIDAYS)]  # the market's own holidays
    assert warnings_of(panel({s: closed for s in "abcde"}), tmp_path / "r2") == []
