"""Zone-aware times every few hours on the zone's clocks (00:00, 03:00 … in Berlin) keep
that grid across a change of daylight saving time: stepped by elapsed hours, as pandas'
``date_range(freq="3h", tz=…)`` steps, a forecast crossing the change left it for good
(01:00, 04:00 … after the spring change; 13:00 and 01:00 for 12-hourly readings). Times
a fixed number of elapsed hours apart (UTC readings shown in the zone) keep their step."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import open_client

from manymodels import local_hours
from manymodels.forecasting import forecast
from manymodels.frequencies import infer_frequency
from manymodels.pipeline import train
from manymodels.timefeatures import advance, retreat

SPEC = {
    "name": "hours",
    "task": "regression",
    "partition_by": ["store"],
    "target": "units",
    "time_column": "t",
    "features": ["price"],
    "lags": [1],
    "metric": "neg_mean_absolute_error",
    "min_rows": 20,
    "validation": {"strategy": "last", "size": 8},
    "candidates": [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}],
}
ZONE = "Europe/Berlin"


def _local(start: str, end: str, step: str) -> pd.DatetimeIndex:
    """Readings at a local clock's ``step`` (a time the spring change skips is not read)."""
    wall = pd.date_range(start, end, freq=step)
    times = wall.tz_localize(ZONE, nonexistent="NaT", ambiguous=True)
    return times[~times.isna()]


def _table(times: pd.DatetimeIndex) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = len(times)
    return pd.DataFrame(
        {"store": 1, "t": times, "price": rng.uniform(1, 3, n), "units": rng.uniform(1, 3, n)}
    )


def _forecast_times(tmp_path: Path, times: pd.DatetimeIndex, horizon: int) -> list[str]:
    root = tmp_path / "reg"
    summary = train(SPEC, _table(times), root, backend="local")
    assert summary.run.options.get("warnings", []) == []  # no gap read over the change
    out = forecast(root, horizon=horizon)
    return [t.isoformat() for t in out["t"]]


@pytest.mark.parametrize(
    ("step", "end", "expected"),
    [
        (
            "3h",
            "2024-03-30T21:00",
            ["2024-03-31T00:00:00+01:00", "2024-03-31T03:00:00+02:00",
             "2024-03-31T06:00:00+02:00"],
        ),  # before: 04:00+02:00, 07:00+02:00
        (
            "12h",
            "2024-03-30T12:00",
            ["2024-03-31T00:00:00+01:00", "2024-03-31T12:00:00+02:00",
             "2024-04-01T00:00:00+02:00"],
        ),  # before: 13:00+02:00, 2024-04-01T01:00
        (
            "3h",
            "2024-10-26T21:00",
            ["2024-10-27T00:00:00+02:00", "2024-10-27T03:00:00+01:00",
             "2024-10-27T06:00:00+01:00"],
        ),  # autumn, before: 02:00+01:00, 05:00+01:00
        (
            "2h",
            "2024-03-30T22:00",
            ["2024-03-31T00:00:00+01:00", "2024-03-31T04:00:00+02:00",
             "2024-03-31T06:00:00+02:00"],
        ),  # 02:00 is never shown that night: the grid goes on at 04:00 (before: 03:00, 05:00)
    ],
)  # fmt: skip
def test_a_forecast_across_a_change_keeps_the_local_clocks_grid(
    tmp_path: Path, step: str, end: str, expected: list[str]
) -> None:
    start = pd.Timestamp(end) - pd.Timedelta(days=20)
    times = _local(str(start), end, step)
    assert _forecast_times(tmp_path, times, 3) == expected


@pytest.mark.parametrize("step", ["3h", "2h"])
def test_training_across_a_change_reads_no_gap_and_forecasts_on_the_grid(
    tmp_path: Path, step: str
) -> None:
    """03-31: 00:00 to 03:00 is 2 elapsed hours; on a 2-hour grid 00:00 to 04:00 (no 02:00
    that night) is 3, which the lag-gap check read as a skipped period once its step was
    the wall clock's."""
    times = _local("2024-03-20", "2024-04-05T18:00", step)
    assert _forecast_times(tmp_path, times, 2) == [
        "2024-04-05T21:00:00+02:00" if step == "3h" else "2024-04-05T20:00:00+02:00",
        "2024-04-06T00:00:00+02:00" if step == "3h" else "2024-04-05T22:00:00+02:00",
    ]


def test_a_change_at_another_hour_skips_that_hour_of_the_grid() -> None:
    """Helsinki's clocks go from 03:00 to 04:00: on a 3-hour grid the reading after 00:00
    is 06:00, and the horizon still holds three steps."""
    steps = advance(["2024-03-30T21:00:00+02:00"], "3h-local", 3, "Europe/Helsinki")
    assert [t.isoformat() for t in steps] == [
        "2024-03-31T00:00:00+02:00",
        "2024-03-31T06:00:00+03:00",
        "2024-03-31T09:00:00+03:00",
    ]
    back = retreat(["2024-03-31T06:00:00+03:00"], "3h-local", "Europe/Helsinki")
    assert [t.isoformat() for t in back] == ["2024-03-31T00:00:00+02:00"]


def test_elapsed_hours_shown_in_a_zone_keep_their_step() -> None:
    """UTC readings every 3 hours, shown in Berlin, leave the local grid at the change:
    their step stays 3 elapsed hours, as before."""
    utc = pd.date_range("2024-03-20", "2024-04-05", freq="3h", tz="UTC").tz_convert(ZONE)
    offsets = np.array([0, len(utc)])
    assert infer_frequency(utc, offsets) == "3h"
    local = _local("2024-03-20", "2024-04-05", "3h")
    assert infer_frequency(local, np.array([0, len(local)])) == "3h-local"
    for zone in ("UTC", "Asia/Tokyo"):  # no change of clocks: elapsed hours, as before
        fixed = pd.date_range("2024-03-20", "2024-04-05", freq="3h", tz=zone)
        assert infer_frequency(fixed, np.array([0, len(fixed)])) == "3h"
    hourly = _local("2024-03-20", "2024-04-05", "1h")  # every hour: elapsed and local agree
    assert infer_frequency(hourly, np.array([0, len(hourly)])) == "h"


def test_the_router_and_a_future_table_take_the_local_clocks_steps(tmp_path: Path) -> None:
    """The router steps as ``forecast`` does, and a future table given on the local grid
    across the change is matched (before: its 03:00 row was no forecast step, refused)."""
    root = tmp_path / "reg"
    train(SPEC, _table(_local("2024-03-10", "2024-03-30T21:00", "3h")), root, backend="local")
    steps = ["2024-03-31T00:00:00+01:00", "2024-03-31T03:00:00+02:00"]
    future = pd.DataFrame({"store": 1, "t": pd.to_datetime(steps, utc=True).tz_convert(ZONE),
                           "price": [9.0, 9.0]})  # fmt: skip
    out = forecast(root, horizon=2, future=future)
    assert [t.isoformat() for t in out["t"]] == steps

    from serving.settings import Settings

    with open_client(Settings(registry=root)) as client:
        r = client.post("/v1/partitions/store=1/forecast", json={"horizon": 2})
    assert r.status_code == 200, r.text
    assert [s["t"] if "t" in s else s["time"] for s in r.json()["forecast"]] == steps, r.text


def test_a_zone_whose_clocks_change_for_a_month_only_keeps_its_grid() -> None:
    """Casablanca's clocks go back for Ramadan only (2024: 03-10 to 04-14): readings every 3
    hours on its clocks, both offsets among them, were read as elapsed hours ('3h': the
    four points a season apart that looked for a change all fell outside Ramadan), and a
    forecast across the change back to +01:00 came out at 04:00 and 07:00."""
    zone = "Africa/Casablanca"
    wall = pd.date_range("2024-02-01", "2024-04-10", freq="3h")
    times = wall.tz_localize(zone, nonexistent="NaT", ambiguous=np.ones(len(wall), dtype=bool))
    frequency = infer_frequency(times, np.array([0, len(times)]))
    assert frequency == "3h-local"
    steps = advance(["2024-04-13T21:00:00+00:00"], frequency, 3, zone)
    assert [t.isoformat() for t in steps] == [
        "2024-04-14T00:00:00+00:00",  # 02:00 +00:00 becomes 03:00 +01:00
        "2024-04-14T03:00:00+01:00",
        "2024-04-14T06:00:00+01:00",
    ]


@pytest.mark.parametrize(
    ("start", "end", "step", "expected"),
    [
        (
            "2024-03-10T06:00", "2024-03-30T18:00", "12h",
            ["2024-03-31T06:00:00+02:00", "2024-03-31T18:00:00+02:00",
             "2024-04-01T06:00:00+02:00"],
        ),  # before: 07:00, 19:00, 07:00
        (
            "2024-10-10T06:00", "2024-10-26T22:00", "8h",
            ["2024-10-27T06:00:00+01:00", "2024-10-27T14:00:00+01:00",
             "2024-10-27T22:00:00+01:00"],
        ),  # shifts at 06:00, 14:00, 22:00; before: 05:00, 13:00, 21:00
    ],
)  # fmt: skip
def test_a_local_grid_off_midnight_keeps_its_hours(
    start: str, end: str, step: str, expected: list[str]
) -> None:
    """Twice-daily readings at 06:00 and 18:00 (or a factory's shifts at 06:00, 14:00 and
    22:00) are on a local clock's grid too, one that does not hold midnight: they were read
    as elapsed hours and forecast an hour off after the change."""
    times = pd.date_range(start, end, freq=step).tz_localize(ZONE)
    frequency = infer_frequency(times, np.array([0, len(times)]))
    assert frequency == f"{step}-local"
    steps = advance([times[-1].isoformat()], frequency, 3, ZONE)
    assert [t.isoformat() for t in steps] == expected


def test_a_future_table_of_text_across_a_change_is_read(tmp_path: Path) -> None:
    """A future table as JSON gives a zone's times as ISO text, whose offset changes with the
    clocks (00:00+01:00, then 03:00+02:00): it was refused as "time column 't' must hold
    dates (Mixed timezones detected …)". A time without its offset among them stays
    refused (read as UTC, it would be another instant)."""
    root = tmp_path / "reg"
    train(SPEC, _table(_local("2024-03-10", "2024-03-30T21:00", "3h")), root, backend="local")
    steps = ["2024-03-31T00:00:00+01:00", "2024-03-31T03:00:00+02:00"]
    future = pd.DataFrame({"store": 1, "t": steps, "price": [9.0, 9.0]})
    out = forecast(root, horizon=2, future=future)
    assert [t.isoformat() for t in out["t"]] == steps
    from manymodels.exceptions import DataError

    future["t"] = ["2024-03-31T00:00:00+01:00", "2024-03-31T03:00:00"]
    with pytest.raises(DataError, match="time column 't' must hold dates"):
        forecast(root, horizon=2, future=future)


def _load_before() -> Any:
    """The oracle, ``local_hours.advance`` before each distinct wall time was placed once: the
    benchmark's copy (``benchmarks/_local_hours_before.py``, loaded by its path, as
    ``benchmarks/`` is no package), so that the old stepping the benchmark times and the one
    these times are checked against are one."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_local_hours_before.py"
    spec = importlib.util.spec_from_file_location("_local_hours_before", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BEFORE = _load_before()


def _stepped_each(base: pd.DatetimeIndex, hours: int, horizon: int) -> pd.DatetimeIndex:
    """Every partition's wall time at every step placed in the zone on its own."""
    return BEFORE.stepped_each(base, pd.DateOffset(hours=hours), horizon)


def _clock_grid(zone: str, hours: int, phase: str, start: str, end: str) -> pd.DatetimeIndex:
    """A local clock's readings every ``hours`` from ``phase`` past midnight (one the
    spring change skips is not read; a repeated one is read at its first instant)."""
    wall = pd.date_range(start, end, freq=f"{hours}h") + pd.Timedelta(phase)
    times = wall.tz_localize(zone, nonexistent="NaT", ambiguous=np.ones(len(wall), dtype=bool))
    return times[~times.isna()]


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/New_York", "Africa/Casablanca", "Australia/Lord_Howe"]
)
def test_each_wall_time_placed_once_gives_the_times_of_each_step_placed_alone(zone: str) -> None:
    """Stepping places each distinct wall time in the zone once and shares it among the
    partitions that reach it (~5× the time of plain ``3h`` before, at 100,000 partitions):
    the times are those of placing every partition's every step on its own, across the
    changes of 2023–2025 (Casablanca's Ramadan, Lord Howe's half hour, New York's 02:00),
    on grids off midnight (a skipped or repeated 01:30 or 02:30 on Lord Howe's clocks), for
    horizons crossing many changes, partitions on several grids at once, and a few
    partitions years apart."""
    rng = np.random.default_rng(0)
    for hours in (2, 3, 12):
        phases = ["0h", "30min", "1h30min"] if hours < 12 else ["0h", "2h30min", "6h"]
        grids = [_clock_grid(zone, hours, p, "2023-01-01", "2025-12-31") for p in phases]
        every = grids[0].append(grids[1]).append(grids[2])  # three grids in one call
        for horizon, unit in [(1, "us"), (24, "us"), (24, "s")]:
            base = every.as_unit(unit)
            got = local_hours.advance(base, pd.DateOffset(hours=hours), horizon)
            want = _stepped_each(base, hours, horizon)
            assert got.equals(want) and got.dtype == want.dtype, (hours, horizon, unit)
        far = grids[1][rng.integers(0, len(grids[1]), 3)].append(grids[0][::500])  # sparse
        long = 24 * 120 // hours  # 120 days of steps
        for base, horizon in [(far, 24), (far, long), (grids[2][::40], long)]:
            got = local_hours.advance(base, pd.DateOffset(hours=hours), horizon)
            assert got.equals(_stepped_each(base, hours, horizon)), (hours, horizon)


def test_partitions_ending_together_share_their_wall_times() -> None:
    """100,000 partitions that end at the same time (all read up to the same hour) place
    ``width`` wall times in the zone, not 100,000 × ``width``; partitions on two grids (00:00
    and 01:30, 3-hourly) a run of times each; a few partitions years apart their own."""
    stride = 3 * 3_600 * 10**6  # microseconds
    last = np.int64(pd.Timestamp("2024-03-30T21:00").as_unit("us")._value)
    times, starts = local_hours.lattice(np.full(100_000, last), stride, 26)
    assert len(times) == 26 and not starts.any()
    assert times[0] == last + stride and times[-1] == last + 26 * stride
    both = np.array([last, last - stride, last + stride // 2, last - 8 * stride], dtype=np.int64)
    times, starts = local_hours.lattice(both, stride, 26)
    assert len(times) == (8 + 26) + 26  # last - 8 steps to last; last + 1h30
    for wall, start in zip(both, starts, strict=True):
        assert list(times[start : start + 26]) == list(wall + stride * np.arange(1, 27))
    apart = np.array([last, last - 10 * 8 * 365 * stride], dtype=np.int64)  # ten years
    times, starts = local_hours.lattice(apart, stride, 26)
    assert len(times) == 2 * 26 and list(starts) == [0, 26]
