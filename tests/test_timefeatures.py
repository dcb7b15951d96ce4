"""Tests for manymodels.timefeatures and the time-series spec options as training sees them:
calendar parts, target lags, the inferred frequency and what each version records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels import timefeatures as tf
from manymodels.data import prepare
from manymodels.exceptions import DataError, SpecError
from manymodels.frequencies import infer_frequency
from manymodels.lagfeatures import LagPlan, table_features
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec


def weekly_frame(*, shuffle: bool = False) -> pd.DataFrame:
    """Two partitions of weekly dates, the second starting earlier; y = 10 × pid + row."""
    a = pd.DataFrame({"pid": 1, "t": pd.date_range("2024-01-01", periods=5, freq="7D")})
    b = pd.DataFrame({"pid": 2, "t": pd.date_range("2023-06-19", periods=4, freq="7D")})
    df = pd.concat([a, b], ignore_index=True)
    df["y"] = df["pid"] * 10.0 + df.groupby("pid").cumcount()
    df["x0"] = np.arange(len(df), dtype=np.float64)
    df["t"] = df["t"].dt.strftime("%Y-%m-%d")  # text dates, as a CSV gives them
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True) if shuffle else df


# ------------------------------------------------------------------------------ calendar
def test_calendar_values_of_known_dates() -> None:
    # a Monday in ISO week 1; a leap day; a Monday that is already ISO week 1 of 2025
    dates = pd.to_datetime(["2024-01-01", "2024-02-29", "2024-12-30"])
    parts = tf.calendar_values(dates, ["year", "month", "week", "day_of_week", "day_of_year",
                                       "quarter"])  # fmt: skip
    assert parts["year"].tolist() == [2024, 2024, 2024]
    assert parts["month"].tolist() == [1, 2, 12]
    assert parts["week"].tolist() == [1, 9, 1]
    assert parts["day_of_week"].tolist() == [0, 3, 0]
    assert parts["day_of_year"].tolist() == [1, 60, 365]
    assert parts["quarter"].tolist() == [1, 1, 4]
    assert all(v.dtype == np.int64 for v in parts.values())


def test_prepare_adds_calendar_features_named_after_the_time_column() -> None:
    spec = Spec.from_dict(spec_dict(calendar=["month", "day_of_year"]))
    table, _ = prepare(spec, weekly_frame(shuffle=True))
    assert table.features == ["x0", "t_month", "t_day_of_year"]
    assert table.feature_dtypes["t_month"] == "int64"
    assert isinstance(table.X, np.ndarray)
    # partition 2 starts on Monday 2023-06-19, day 170 of the year, and runs into July
    rows = table.rows(table.keys.index("pid=2"))
    assert table.X[rows, 1].tolist() == [6, 6, 7, 7]
    assert table.X[rows, 2].tolist() == [170, 177, 184, 191]


# ------------------------------------------------------------------------------ lags
def test_lags_stay_within_partitions() -> None:
    y = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    out = table_features(y, np.array([0, 3, 5]), LagPlan("y", lags=(1, 2)))
    expected = [[np.nan, np.nan], [1, np.nan], [2, 1], [np.nan, np.nan], [10, np.nan]]
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float64))


def test_prepare_lags_follow_time_order_not_file_order() -> None:
    spec = Spec.from_dict(spec_dict(lags=[1, 3]))
    table, _ = prepare(spec, weekly_frame(shuffle=True))
    assert table.features == ["x0", "y_lag1", "y_lag3"]
    for key, base in (("pid=1", 10.0), ("pid=2", 20.0)):
        rows = table.rows(table.keys.index(key))
        y = table.y[rows]
        assert y.tolist() == [base + i for i in range(len(y))]  # sorted by time
        np.testing.assert_array_equal(table.X[rows, 1], [np.nan, *y[:-1]])
        np.testing.assert_array_equal(table.X[rows, 2], [np.nan] * 3 + list(y[:-3]))


def test_lags_with_categorical_features_extend_the_dataframe() -> None:
    df = weekly_frame().assign(colour=lambda d: np.where(d["x0"] % 2 == 0, "red", "blue"))
    table, _ = prepare(Spec.from_dict(spec_dict(lags=[1])), df)
    assert isinstance(table.X, pd.DataFrame)
    assert list(table.X.columns) == ["x0", "colour", "y_lag1"]
    assert table.X["y_lag1"].isna().sum() == 2  # each partition's first row


def test_training_drops_rows_without_lags_and_records_history(tmp_path: Path) -> None:
    df = linear_frame(2, 30)
    spec = spec_dict(lags=[1, 2], calendar=None, validation={"strategy": "last", "size": 5})
    with Registry(tmp_path / "reg") as reg:
        train(spec, df, reg, backend="local")
        v = reg.get_version("pid=1")
        fallback = reg.get_version("__fallback__")
    assert v.n_rows == 28  # 30 rows less the two without a lag2
    assert fallback.n_rows == 56
    assert v.feature_schema["features"] == ["x0", "x1", "y_lag1", "y_lag2"]
    last = df[df["pid"] == 1].sort_values("t")
    assert v.feature_schema["forecast"] == {
        "frequency": 1,
        "calendar": {},
        "lags": {"y_lag1": 1, "y_lag2": 2},
        "exogenous": ["x0", "x1"],
    }
    history = v.feature_schema["history"]
    assert history["key"] == {"pid": 1}
    assert history["time"] == 29
    assert history["target"] == pytest.approx(last["y"].to_numpy()[-2:].tolist())
    assert history["features"] == pytest.approx(last[["x0", "x1"]].iloc[-1].to_dict())
    assert "history" not in fallback.feature_schema


def test_specs_without_the_options_train_as_before(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg") as reg:
        train(spec_dict(), linear_frame(2, 30), reg, backend="local")
        v = reg.get_version("pid=0")
    assert v.n_rows == 30
    assert v.feature_schema["features"] == ["x0", "x1"]
    assert v.feature_schema["forecast"]["lags"] == {}


# ------------------------------------------------------------------------------ frequency
@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (pd.date_range("2024-01-01", periods=6, freq="7D"), "7D"),
        (pd.date_range("2024-01-01", periods=6, freq="D"), "1D"),
        (pd.date_range("2024-01-01", periods=6, freq="h"), "h"),
        (pd.date_range("2024-01-01", periods=6, freq="MS"), "MS"),
        (pd.date_range("2024-01-31", periods=6, freq="ME"), "ME"),
        (pd.date_range("2024-01-01", periods=6, freq="QS"), "QS"),
        (pd.date_range("2020-01-01", periods=6, freq="YS"), "YS"),
        (np.arange(6), 1),
        (np.arange(6) * 2.5, 2.5),
    ],
)
def test_infer_frequency(times: object, expected: object) -> None:
    values = np.asarray(times)
    assert infer_frequency(values, np.array([0, len(values)])) == expected


@pytest.mark.parametrize(
    ("alias", "start"),
    [
        ("QS-FEB", "2019-02-01"), ("QS-MAR", "2019-03-01"), ("QE-NOV", "2019-02-28"),
        ("QE-OCT", "2019-01-31"), ("YS-JUL", "2001-07-01"), ("YE-JUN", "2001-06-30"),
    ],
)  # fmt: skip
def test_fiscal_quarters_and_years_keep_their_anchor(alias: str, start: str) -> None:
    """Quarters starting in March (or ending in November) and years starting in July were
    given their median spacing (2196h, 92D, 365D) as frequency, and their forecasts ran off
    the calendar: March quarters ending 2020-12-01 were forecast at 2021-03-03, 06-03, 09-03,
    12-04. Now the anchored alias, whose steps are the calendar's."""
    times = pd.date_range(start, periods=17, freq=alias)
    values = np.asarray(times[:13])  # as a table's column holds them: no freq attached
    frequency = infer_frequency(values, np.array([0, len(values)]))
    assert frequency == alias
    assert list(tf.advance([str(times[12])], frequency, 4)) == list(times[13:])


@pytest.mark.parametrize(
    ("alias", "start", "expected"),
    [
        ("2QS", "2019-01-01", "6MS"), ("6MS", "2019-03-01", "6MS"), ("2QE", "2019-06-30", "6ME"),
        ("2MS", "2019-01-01", "2MS"), ("4MS", "2019-01-01", "4MS"), ("2YS", "2001-01-01", "24MS"),
    ],
)  # fmt: skip
def test_several_months_apart_step_by_months(alias: str, start: str, expected: str) -> None:
    """Half-years, two- and four-monthly data and every other year were given their median
    spacing (182D, 184D, 61D, 122D, 731D) as frequency, and their forecasts drifted off the
    calendar: half-years ending 2023-07-01 were forecast at 2023-12-30, 2024-06-29 …"""
    times = pd.date_range(start, periods=17, freq=alias)
    values = np.asarray(times[:13])
    frequency = infer_frequency(values, np.array([0, len(values)]))
    assert frequency == expected
    assert list(tf.advance([str(times[12])], frequency, 4)) == list(times[13:])


@pytest.mark.parametrize(
    ("start", "alias", "expected"),
    [("2019-02-01", "QS-FEB", "3MS+14D"), ("2019-02-01", "YS-FEB", "12MS+9D"),
     ("2019-01-01", "2MS", "2MS+9D")],
)  # fmt: skip
def test_a_day_within_months_apart_stays_on_that_day(start: str, alias: str, expected: str) -> None:
    """Quarters on the 15th of February, May, August and November stepped by 92D (2022-05-18,
    08-18 …), February 10ths by 365D (2029-02-09): now months and the day within them."""
    days = int(expected.partition("+")[2].removesuffix("D"))
    times = pd.date_range(start, periods=17, freq=alias) + pd.Timedelta(days=days)
    values = np.asarray(times[:13])
    frequency = infer_frequency(values, np.array([0, len(values)]))
    assert frequency == expected
    assert list(tf.advance([str(times[12])], frequency, 4)) == list(times[13:])


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("BQS", "3BMS"), ("BQE", "3BME"), ("BQS-FEB", "3BMS"), ("BYS", "12BMS"), ("2BQS", "6BMS")],
)
def test_business_quarters_and_years_stay_on_business_days(alias: str, expected: str) -> None:
    """A quarter's first (last) business day stepped by 91D: after 2024-07-01 came
    2024-09-30, after 2024-09-27 2024-12-27; business years by 365D (2051-01-03)."""
    times = pd.date_range("2015-01-01", periods=40, freq=alias)
    values = np.asarray(times[:36])
    frequency = infer_frequency(values, np.array([0, len(values)]))
    assert frequency == expected
    assert list(tf.advance([str(times[35])], frequency, 4)) == list(times[36:])


@pytest.mark.parametrize(
    ("alias", "zone"), [("SMS", None), ("SME", None), ("SMS", "Europe/Berlin")]
)
def test_pay_days_twice_a_month_stay_on_them(alias: str, zone: str | None) -> None:
    """The 1st and 15th (or the 15th and the month's last day) stepped by 14D or 15D and left
    the calendar at once: 2020-04-29, 05-13 after 04-15."""
    times = pd.date_range("2020-01-01", periods=40, freq=alias, tz=zone)
    frequency = infer_frequency(times[:36], np.array([0, 36]))
    assert frequency == alias
    assert list(tf.advance([times[35].isoformat()], frequency, 4, zone)) == list(times[36:])


@pytest.mark.parametrize(
    ("mask", "zone", "expected"),
    [
        ("Mon Tue Wed Thu Fri Sat", None, "C-Mon-Tue-Wed-Thu-Fri-Sat"),
        ("Mon Wed Fri", None, "C-Mon-Wed-Fri"),
        ("Tue Wed Thu Fri Sat", "Europe/Berlin", "C-Tue-Wed-Thu-Fri-Sat"),
    ],
)
def test_days_open_each_week_stay_on_them(mask: str, zone: str | None, expected: str) -> None:
    """A shop closed on Sundays stepped by 1D (a forecast after Saturday fell on Sunday), a
    market on Mondays, Wednesdays and Fridays by 2D (Friday, then Sunday and Tuesday)."""
    times = pd.bdate_range("2024-03-01 09:00", periods=40, freq="C", weekmask=mask,
                           normalize=False, tz=zone)  # fmt: skip
    frequency = infer_frequency(times[:36], np.array([0, 36]))
    assert frequency == expected
    assert list(tf.advance([times[35].isoformat()], frequency, 4, zone)) == list(times[36:])
    back = tf.retreat([t.isoformat() for t in times[36:]], frequency, zone)
    assert list(back) == list(times[35:39])


def test_every_third_day_is_a_step_not_days_of_the_week() -> None:
    """Six times every 3 days (Mon, Thu, Sun, Wed, Sat, Tue) never hold a Friday: they were
    given the open days C-Mon-Tue-Wed-Thu-Sat-Sun, and forecast daily (Jan 17, 18, 20)."""
    times = pd.date_range("2024-01-01", periods=9, freq="3D")
    frequency = infer_frequency(times[:6], np.array([0, 6]))
    assert frequency == "3D"
    assert list(tf.advance([times[5].isoformat()], frequency, 3)) == list(times[6:])


def forecast_days(tmp_path: Path, times: pd.DatetimeIndex, horizon: int, fmt: str) -> list[str]:
    """The times (as ``fmt``) a lag-1 Ridge forecasts ``horizon`` steps ahead, trained on two
    partitions of ``linear_frame`` whose rows stand at ``times``: the calendar it learnt."""
    from manymodels.forecasting import forecast

    df = linear_frame(2, len(times))
    df["t"] = np.tile(times.to_numpy(), 2)
    train(spec_dict(lags=[1]), df, tmp_path / "reg", backend="local")
    ahead = forecast(tmp_path / "reg", horizon=horizon)
    return sorted(set(pd.to_datetime(ahead["t"]).dt.strftime(fmt)))


def test_a_forecast_of_a_shop_closed_on_sundays_skips_them(tmp_path: Path) -> None:
    days = pd.bdate_range("2024-01-01", periods=30, freq="C", weekmask="Mon Tue Wed Thu Fri Sat")
    # ends on Saturday 2024-02-03
    assert forecast_days(tmp_path, days, 2, "%a %d") == ["Mon 05", "Tue 06"]


def test_a_forecast_of_half_years_stays_on_the_calendar(tmp_path: Path) -> None:
    halves = pd.date_range("2015-01-01", periods=20, freq="6MS")  # ends 2024-07-01
    assert forecast_days(tmp_path, halves, 3, "%Y-%m-%d") == [
        "2025-01-01", "2025-07-01", "2026-01-01"
    ]  # fmt: skip


def test_frequency_is_the_median_within_partitions() -> None:
    # partition 2 starts long before partition 1 ends; one gap of 3 weeks; repeated time
    weeks = pd.to_datetime(["2024-03-04", "2024-03-11", "2024-04-01", "2024-04-08",
                            "2023-01-02", "2023-01-09", "2023-01-09", "2023-01-16"])  # fmt: skip
    assert infer_frequency(weeks.to_numpy(), np.array([0, 4, 8])) == "7D"
    assert infer_frequency(np.array([5, 7]), np.array([0, 1, 2])) is None


def test_advance_is_partition_major() -> None:
    times = tf.advance(["2025-01-27T00:00:00", "2024-11-01T00:00:00"], "MS", 2)
    assert list(times.strftime("%Y-%m-%d")) == ["2025-02-01", "2025-03-01",
                                                "2024-12-01", "2025-01-01"]  # fmt: skip
    weekly = tf.advance(["2025-02-17T00:00:00"], "7D", 3)
    assert list(weekly.strftime("%Y-%m-%d")) == ["2025-02-24", "2025-03-03", "2025-03-10"]
    assert tf.advance([29, 9], 1, 2).tolist() == [30, 31, 10, 11]
    assert tf.advance([1.0], 0.5, 2).tolist() == [1.5, 2.0]
    assert tf.advance([2.8], 0.1, 3).tolist() == [2.9, 3.0, 3.1]  # not 3.0999999999999996
    assert tf.advance([0.0], 1e-20, 1).tolist() == [1e-20]


# ------------------------------------------------------------------------ spec and data checks
@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"calendar": ["month"], "time_column": None, "validation": {"strategy": "holdout"}},
         "calendar needs a time_column"),
        ({"lags": [1], "time_column": None, "validation": {"strategy": "holdout"}},
         "lags needs a time_column"),
        ({"calendar": ["weekday"]}, "calendar[0]"),
        ({"calendar": []}, "calendar: is empty"),
        ({"lags": [1, 1]}, "lists a value twice"),
        ({"lags": [0]}, "lags[0]"),
        ({"lags": [1.5]}, "lags[0]"),
        ({"lags": [1], "features": ["x0", "y_lag1"]}, "'y_lag1' is derived"),
    ],
)  # fmt: skip
def test_spec_options_are_validated(change: dict[str, object], text: str) -> None:
    with pytest.raises(SpecError) as info:
        Spec.from_dict(spec_dict(**change))
    assert text in str(info.value)


def test_spec_hash_of_specs_without_the_options_is_unchanged(samples_dir: Path) -> None:
    # the hashes the spec format had before calendar and lags existed (resume depends on them)
    assert Spec.from_dict(spec_dict()).spec_hash == (
        "37865fa77074d2de4c418ed4fe8838f87bebd4739a81e56aae6af80e01739fb9"
    )
    assert Spec.from_toml(samples_dir / "store_sales.toml").spec_hash == (
        "ae1031af9f963b1d6fd69cb8919082f0b010fc961e9e75eab16ff76056a496e2"
    )
    assert Spec.from_dict(spec_dict(lags=[1])).spec_hash != Spec.from_dict(spec_dict()).spec_hash


def test_data_errors_for_the_options() -> None:
    numbered = linear_frame(1, 10)
    with pytest.raises(DataError, match="calendar features need dates"):
        prepare(Spec.from_dict(spec_dict(calendar=["month"])), numbered)
    with pytest.raises(DataError, match="'y_lag1' already exist"):
        prepare(Spec.from_dict(spec_dict(lags=[1])), numbered.assign(y_lag1=0.0))
    labels = numbered.assign(y=np.where(numbered["y"] > 0, "up", "down"))
    logistic = [{"estimator": "sklearn.linear_model.LogisticRegression"}]
    spec = spec_dict(task="classification", lags=[1], candidates=logistic)
    with pytest.raises(DataError, match="lags need a numeric target"):
        prepare(Spec.from_dict(spec), labels)


@pytest.mark.parametrize(
    ("start", "alias", "frequency", "expected"),
    [
        ("2023-01-15", "MS", "MS+14D", ["2024-09-15", "2024-10-15", "2025-01-15", "2025-08-15"]),
        ("2023-01-10", "QS", "QS+9D", ["2028-01-10", "2028-04-10", "2029-01-10", "2030-10-10"]),
    ],
)
def test_dates_on_one_day_of_the_month_stay_on_it(
    start: str, alias: str, frequency: str, expected: list[str]
) -> None:
    """Monthly data on the 15th had a median spacing of 31 days: its forecast ran 10-16,
    11-16 … 2025-07-22, and a future table with the real dates was refused."""
    first = pd.Timestamp(start)
    times = pd.Series(pd.date_range(first.replace(day=1), periods=20, freq=alias))
    times = times + pd.Timedelta(days=first.day - 1)
    assert infer_frequency(times, np.array([0, 20])) == frequency
    ahead = tf.advance([times.iloc[-1].isoformat()], frequency, 12)
    assert [ahead[i].strftime("%Y-%m-%d") for i in (0, 1, 4, 11)] == expected
    odd = times.copy()
    odd.iloc[3] += pd.Timedelta(days=1)  # not all on one day: the median spacing, as before
    assert infer_frequency(odd, np.array([0, 20])) != frequency
    if alias == "QS":  # the 10th of Feb, May, Aug, Nov: not quarter starts plus 9 days
        later = times + pd.DateOffset(months=1)
        assert infer_frequency(later, np.array([0, 20])) != frequency


@pytest.mark.parametrize(
    ("alias", "start", "expected"),
    [
        ("B", "2024-01-01", ["02-26 Mon", "02-27 Tue", "02-28 Wed", "03-04 Mon"]),
        ("BME", "2023-01-31", ["07-31 Wed", "08-30 Fri", "09-30 Mon", "12-31 Tue"]),
        ("BMS", "2023-01-02", ["07-01 Mon", "08-01 Thu", "09-02 Mon", "12-02 Mon"]),
    ],
)  # fmt: skip
def test_business_days_and_months_stay_on_business_days(
    alias: str, start: str, expected: list[str]
) -> None:
    """Weekday data was stepped by ``1D`` (a Friday's forecast fell on Saturday and Sunday)
    and last business days of the month by ``30D`` (05-30, 06-29 a Saturday, 07-29 …)."""
    n = 40 if alias == "B" else 18
    times = pd.date_range(start, periods=n, freq=alias).to_numpy()  # no freq, as a table's
    assert infer_frequency(times, np.array([0, n])) == alias
    ahead = tf.advance([pd.Timestamp(times[-1]).isoformat()], alias, 6)
    assert [ahead[i].strftime("%m-%d %a") for i in (0, 1, 2, 5)] == expected
    assert {a.year for a in ahead} == {2024}
    few = pd.date_range("2024-01-01", periods=4, freq="B").to_numpy()  # Mon–Thu: no weekend
    assert infer_frequency(few, np.array([0, 4])) == "1D"
    closes = times + np.timedelta64(17, "h")  # a market's close, not midnight: the same
    assert infer_frequency(closes, np.array([0, n])) == alias
    ahead = tf.advance([pd.Timestamp(closes[-1]).isoformat()], alias, 6)
    assert [ahead[i].strftime("%m-%d %a %H") for i in (0, 1)] == [f"{e} 17" for e in expected[:2]]
    mixed = closes.copy()
    mixed[3] -= np.timedelta64(1, "h")  # not all at one time of day: not business days
    assert infer_frequency(mixed, np.array([0, n])) != alias


def test_partitions_of_another_frequency_are_warned_about_and_gaps_are_not() -> None:
    """Monthly and weekly partitions in one table got one frequency, and the weekly one's
    forecasts stepped by a month, silently."""
    months = pd.date_range("2020-01-01", periods=30, freq="MS")
    weeks = pd.date_range("2020-01-06", periods=30, freq="7D")

    def frame(key: str, times: Any) -> pd.DataFrame:
        n = len(times)
        return pd.DataFrame({"k": key, "t": times, "x": np.arange(n, dtype=float), "y": 1.0})

    spec = Spec.from_dict(
        {"name": "mix", "partition_by": ["k"], "target": "y", "time_column": "t",
         "features": ["x"], "candidates": [{"estimator": "sklearn.linear_model.Ridge"}]}
    )  # fmt: skip
    mixed = pd.concat([frame("a", months), frame("b", months), frame("w", weeks)])
    (warning,) = prepare(spec, mixed)[0].extra["warnings"]
    assert warning.startswith("1 partition(s) step unlike the table") and "'k=w'" in warning
    gappy = pd.concat([frame("a", weeks), frame("b", weeks), frame("g", weeks[::2])])
    assert "warnings" not in prepare(spec, gappy)[0].extra  # every other week: gaps
    short = pd.concat([frame("a", months), frame("s", months[[0, 1, 3]])])
    assert "warnings" not in prepare(spec, short)[0].extra  # Jan, Feb, Apr: a gap
    rng = np.random.default_rng(0)
    scattered = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 1e6, 60), unit="s")
    events = pd.concat(
        [frame("e", scattered[:30].sort_values()), frame("f", scattered[30:].sort_values())]
    )
    assert "warnings" not in prepare(spec, events)[0].extra  # irregular events
    # events logged to the minute, busy users and quiet ones: the median step is a frequency
    # people name (``min``), and the busy users were warned about, told to split the table
    waits = {"busy": 20.0, "usual": 60.0, "quiet": 300.0}
    start = pd.Timestamp("2024-01-01")
    logged = [
        frame(k, start + pd.to_timedelta(np.cumsum(rng.exponential(w, 40)).round(), unit="min"))
        for k, w in waits.items()
    ]
    table = prepare(spec, pd.concat(logged))[0]
    assert str(table.extra["frequency"]).endswith("min")
    assert "warnings" not in table.extra
    # days, weeks and months (a median of weeks, of which days and months are no whole number)
    # are still periods: the days and months are warned about
    days = pd.date_range("2020-01-01", periods=40, freq="D")
    three = pd.concat([frame("d", days), frame("w", weeks), frame("w2", weeks), frame("m", months)])
    (warning,) = prepare(spec, three)[0].extra["warnings"]
    assert "step unlike the table (frequency 7D), e.g. 'k=d'" in warning


def test_repeated_times_compare_exact_values() -> None:
    """Nanoseconds of today's dates, or integers past 2**53, differ by less than a float64
    can tell apart: distinct times are never called one."""
    offsets = np.array([0, 3])
    near = pd.DatetimeIndex(["2024-01-01 00:00:00.000000100", "2024-01-01 00:00:00.000000200",
                             "2024-01-01 00:00:00.000000300"])  # fmt: skip
    assert tf.repeated_times(near, offsets, ["k"]) is None
    big = np.array([2**60, 2**60 + 1, 2**60 + 2], dtype=np.int64)
    assert tf.repeated_times(big, offsets, ["k"]) is None
    same = np.array([2**60, 2**60 + 1, 2**60 + 1], dtype=np.int64)
    said = tf.repeated_times(same, offsets, ["k"])
    assert said is not None and f"'k' at {2**60 + 1}" in said
    across = np.array([5, 5])  # one time in two partitions is two periods
    assert tf.repeated_times(across, np.array([0, 1, 2]), ["a", "b"]) is None


def test_a_forecast_of_weekday_data_skips_the_weekend(tmp_path: Path) -> None:
    days = pd.bdate_range("2024-01-01", periods=30)  # ends on Friday 2024-02-09
    assert forecast_days(tmp_path, days, 3, "%a %d") == ["Mon 12", "Tue 13", "Wed 14"]


@pytest.mark.parametrize(
    ("frequency", "zone", "times"),
    [
        ("MS+14D", None, ["2024-01-15", "2024-03-15", "2025-01-15"]),
        ("QS+9D", None, ["2028-01-10", "2028-04-10"]),
        ("B", None, ["2024-03-04T17:00:00", "2024-03-05T17:00:00"]),
        ("BME", None, ["2024-08-30", "2024-09-30"]),
        ("W-SUN", None, ["2024-03-03", "2024-03-10"]),
        ("1D", "Europe/Berlin", ["2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00"]),
    ],
)
def test_retreat_is_the_step_advance_takes_back(
    frequency: str, zone: str | None, times: list[str]
) -> None:
    """The period before each time is the one ``advance`` steps from to reach it: across
    month lengths, weekends and a change of daylight saving time."""
    back = tf.retreat(times, frequency, zone)
    assert not back.isna().any()
    forward = tf.advance(list(back), frequency, 1, zone)
    expected = pd.DatetimeIndex(pd.to_datetime(times, format="ISO8601", utc=bool(zone)))
    assert (forward.as_unit("ns").asi8 == expected.as_unit("ns").asi8).all()
    assert (back < forward).all()


def test_a_time_off_the_series_steps_has_no_period_before_it() -> None:
    assert tf.retreat(["2024-01-16"], "MS+14D").isna().all()  # the 16th: no 15th steps to it
    assert tf.retreat(["2024-03-09"], "B").isna().all()  # a Saturday
    assert tf.retreat([7, 10], 3).tolist() == [4.0, 7.0]


def test_decimal_steps_are_written_as_their_times_are() -> None:
    """A step of 0.1 inferred from float times is 0.1 (not 0.10000000000000009); a third
    stays the exact median; each partition's steps round to its own start's digits."""
    assert infer_frequency(np.round(np.arange(30) * 0.1, 10), np.array([0, 30])) == 0.1
    thirds = np.arange(24) / 3
    assert infer_frequency(thirds, np.array([0, 24])) == np.median(np.diff(thirds))
    mixed = tf.advance([2.8, 0.1234567890123456], 0.1, 3).tolist()
    assert mixed[:3] == [2.9, 3.0, 3.1]
    assert mixed[3] == pytest.approx(0.2234567890123456, abs=0)


def test_a_wall_time_that_daylight_saving_skips_or_repeats_steps_on() -> None:
    """Daily at 02:30 in Berlin: the last Sunday of March has no 02:30 (the step lands at
    03:00, the first time after it), the last Sunday of October has two (the first is
    taken); pandas raised on both, and a forecast crossing either failed."""
    spring = tf.advance(["2024-03-30T02:30:00+01:00"], "1D", 3, "Europe/Berlin")
    assert [t.isoformat() for t in spring] == [
        "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00", "2024-04-02T02:30:00+02:00",
    ]  # fmt: skip
    autumn = tf.advance(["2024-10-26T02:30:00+02:00"], "1D", 2, "Europe/Berlin")
    assert [t.isoformat() for t in autumn] == [
        "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00",
    ]  # fmt: skip
    back = tf.retreat([spring[1].isoformat(), autumn[1].isoformat()], "1D", "Europe/Berlin")
    assert [t.isoformat() for t in back] == [spring[0].isoformat(), autumn[0].isoformat()]
    hourly = tf.advance(["2024-03-31T01:00:00+01:00"], "1h", 2, "Europe/Berlin")
    assert [t.isoformat() for t in hourly] == [
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T04:00:00+02:00",
    ]  # fmt: skip  (an hour is an instant's step: 01:00 + 1 h is 03:00 summer time)


def _one_spec_frame(parts: dict[str, Any]) -> tuple[Spec, pd.DataFrame]:
    spec = Spec.from_dict(
        {"name": "cal", "partition_by": ["k"], "target": "y", "time_column": "t",
         "features": ["x"], "candidates": [{"estimator": "sklearn.linear_model.Ridge"}]}
    )  # fmt: skip
    frames = [
        pd.DataFrame({"k": key, "t": times, "x": np.arange(len(times), dtype=float), "y": 1.0})
        for key, times in parts.items()
    ]
    return spec, pd.concat(frames, ignore_index=True)


def test_dates_on_a_calendar_the_tables_one_frequency_cannot_keep_are_warned_about() -> None:
    """Month-start partitions beside month-end ones, one mistyped date among month starts,
    a weekday-only partition beside daily ones: the table's frequency fell back to a fixed
    step of days (31D, 1D), forecasts stepped off the calendar, and nothing said so."""
    starts = pd.date_range("2021-01-01", periods=36, freq="MS")
    ends = pd.date_range("2021-01-31", periods=36, freq="ME")
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    weekdays = pd.date_range("2024-01-01", periods=40, freq="B")
    typo = starts.to_series().reset_index(drop=True)
    typo[17] = pd.Timestamp("2022-06-02")

    def warned(parts: dict[str, Any]) -> list[str]:
        spec, df = _one_spec_frame(parts)
        table = prepare(spec, df)[0]
        return [w for w in table.extra.get("warnings", []) if "calendar" in w]

    (mixed,) = warned({"a": starts, "c": ends})
    assert "month starts (e.g. 'k=a' at 2021-01-01" in mixed
    assert "month ends (e.g. 'k=c' at 2021-01-31" in mixed and "31D" in mixed
    (mistyped,) = warned({"a": typo, "b": starts})
    assert mistyped.startswith("1 time(s) are neither a month's start nor its end")
    assert "'k=a' at 2022-06-02" in mistyped
    (weekday,) = warned({"d": days, "w": weekdays})
    assert weekday.startswith("1 partition(s) have times on weekdays only (e.g. 'k=w')")
    # one calendar, and fixed steps that are no calendar: nothing to say
    assert warned({"a": starts, "b": starts}) == []
    assert warned({"c": ends, "d": ends}) == []
    assert warned({"w": weekdays, "v": weekdays}) == []
    every_30 = pd.date_range("2021-01-01", periods=36, freq="30D")
    assert warned({"a": every_30, "b": every_30}) == []
    assert warned({"d": days, "e": days}) == []
    # quarter starts beside quarter ends step by 2196h, a zone's month starts beside its month
    # ends by 44610min: fixed steps too, which the check read as days only
    (quarters,) = warned({"q": pd.date_range("2020-01-01", periods=12, freq="QS"),
                          "e": pd.date_range("2020-03-31", periods=12, freq="QE")})  # fmt: skip
    assert "quarter starts" in quarters and "2196h" in quarters
    berlin = {"a": starts.tz_localize("Europe/Berlin"), "c": ends.tz_localize("Europe/Berlin")}
    (zoned,) = warned(berlin)
    assert "month starts (e.g. 'k=a' at 2021-01-01T00:00:00+01:00" in zoned
    # asked directly with a fixed step, a table of one calendar has nothing to say either
    from manymodels.off_calendar import off_calendar

    assert off_calendar(starts.to_numpy(), np.array([0, 36]), "31D", ["k=a"]) is None


def test_a_weekly_partition_with_a_time_on_another_day_of_the_week_is_warned_about() -> None:
    """One Wednesday posted among Mondays (an append, a retrain) moved every later forecast of
    the partition to Wednesdays, and nothing said so: the table's step is 7D whichever day
    its times fall on. Partitions each on their own day are one calendar each."""
    mondays = pd.date_range("2025-01-06", periods=12, freq="W-MON")
    sundays = pd.date_range("2025-01-05", periods=12, freq="W-SUN")
    moved = mondays.append(pd.DatetimeIndex(["2025-03-26"]))  # a Wednesday, a week on
    spec, df = _one_spec_frame({"b": moved})  # as appended: the partition's rows alone
    (warning,) = prepare(spec, df)[0].extra["warnings"]
    assert warning.startswith("1 partition(s) have weekly times on more than one day of the week")
    assert "(e.g. 'k=b' at 2025-03-26T00:00:00, a Wednesday among Mondays)" in warning
    assert "7D" in warning
    spec, df = _one_spec_frame({"a": mondays, "c": sundays})
    assert "warnings" not in prepare(spec, df)[0].extra
    # quarter starts step by 91D (13 weeks): judged by their anchors, not their weekdays
    quarters = pd.date_range("2020-01-01", periods=12, freq="QS").to_series()
    quarters.iloc[7] = pd.Timestamp("2021-09-27")  # a Monday, not a quarter's start
    spec, df = _one_spec_frame({"q": quarters.reset_index(drop=True)})
    (warning,) = prepare(spec, df)[0].extra["warnings"]
    assert warning.startswith("1 time(s) are neither a quarter's start nor its end"), warning


def test_a_columns_warning_does_not_hide_the_time_series_warning(tmp_path: Path) -> None:
    """The warnings of a table's columns replaced those of its times: a CSV's zero-padded
    key codes hid that one partition's weekly times fell on two days of the week."""
    mondays = pd.date_range("2025-01-06", periods=12, freq="W-MON")
    spec, df = _one_spec_frame({"007": mondays.append(pd.DatetimeIndex(["2025-03-26"]))})
    df.to_csv(tmp_path / "padded.csv", index=False)
    warnings = prepare(spec, tmp_path / "padded.csv")[0].extra["warnings"]
    assert [w.split(" ", 3)[:3] for w in warnings] == [
        ["key", "column", "'k'"],
        ["1", "partition(s)", "have"],
    ]


def test_weekday_shops_beside_ones_open_on_saturdays_are_warned_about() -> None:
    """Monday-to-Friday shops beside Monday-to-Saturday ones: the table's frequency is their
    days (C-Mon-...-Sat) and the weekday shops' forecasts fall on Saturdays they never had.
    With 1D they were named; now the open-days frequency names them too."""
    six = pd.bdate_range("2025-01-06", periods=30, freq="C", weekmask="Mon Tue Wed Thu Fri Sat")
    five = pd.bdate_range("2025-01-06", periods=30)
    spec, df = _one_spec_frame({"a": six, "b": five})
    (warning,) = prepare(spec, df)[0].extra["warnings"]
    assert warning.startswith("1 partition(s) have times on fewer days of the week"), warning
    assert "(frequency C-Mon-Tue-Wed-Thu-Fri-Sat), e.g. 'k=b' on Monday," in warning, warning
    spec, df = _one_spec_frame({"a": six, "c": six})
    assert "warnings" not in prepare(spec, df)[0].extra
