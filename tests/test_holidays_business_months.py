"""A spec's ``holidays`` and a month's first or last business day (``BMS``, ``BME``,
``3BMS``): the holidays were warned of as unused and left out of the version. A table
reporting on 2024-01-02 (New Year's Day listed) was no ``BMS`` at all, and a forecast after
November 2024 fell on 2025-01-01. Now a business month's first (last) day moves past a
listed holiday as pandas' ``CustomBusinessMonthBegin(holidays=...)`` (``End``) moves it: in
the inferred frequency, the forecast's steps (CLI, library, router), a future table's
times, the lag-gap check and a row scored by its time."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import shops_panel, shops_spec, trained_shops
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.data import prepare
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec
from manymodels.timefeatures import advance, retreat
from serving.app import create_app
from serving.settings import Settings

HOLIDAYS = ["2024-01-01", "2024-12-31", "2025-01-01"]
STARTS = pd.offsets.CustomBusinessMonthBegin(holidays=HOLIDAYS)
ENDS = pd.offsets.CustomBusinessMonthEnd(holidays=HOLIDAYS)
# 2024-01-02, not 01-01; the first forecast step of January 2025 is 01-02, not 01-01
MONTH_STARTS = pd.date_range("2022-01-03", "2024-11-01", freq=STARTS)
NEXT_STARTS = pd.date_range("2024-12-01", periods=4, freq=STARTS)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bms") / "registry"
    summary = trained_shops(root, MONTH_STARTS, holidays=HOLIDAYS)
    assert summary.run.options.get("warnings", []) == []  # no gap, no unused holidays
    return root


def test_month_starts_moved_by_a_holiday_are_bms_and_forecast_past_the_next() -> None:
    assert list(MONTH_STARTS[24:25]) == [pd.Timestamp("2024-01-02")]
    want = ["2024-12-02", "2025-01-02", "2025-02-03", "2025-03-03"]
    assert [str(t.date()) for t in NEXT_STARTS] == want


def test_cli_forecast_steps_past_the_listed_holidays(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "next.csv"
    args = ["forecast", "--registry", str(root), "--horizon", "4", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, parse_dates=["t"])
    for _, rows in table.groupby("shop"):
        assert list(rows["t"]) == list(NEXT_STARTS)
    assert np.isfinite(table["prediction"]).all()


def test_library_and_router_forecasts_and_the_plan_follow_them(root: Path) -> None:
    frame = forecast(root, horizon=4)
    assert list(frame[frame["shop"] == "s1"]["t"]) == list(NEXT_STARTS)
    with Registry.open(root) as reg:
        plan = reg.get_version("shop=s0").schema.forecast
    assert plan is not None and plan.frequency == "BMS" and plan.holidays == HOLIDAYS
    with warnings.catch_warnings():  # Starlette prefers httpx2; warnings are errors here
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(Settings(registry=root))) as client:
        r = client.post("/v1/partitions/shop=s2/forecast", json={"horizon": 4})
        assert r.status_code == 200, r.text
        times = pd.to_datetime([step["time"] for step in r.json()["forecast"]])
        assert times.tolist() == list(NEXT_STARTS)


def test_a_row_given_by_its_time_reads_its_lags_across_the_holiday(root: Path) -> None:
    """2025-01-02 is the second period after the version's last (2024-11-01): its lag 2 is
    the last target, as the forecast's second step has it (whose lag 1 is the first step's
    prediction); 2025-01-01 was that period before."""
    first = forecast(root, ["shop=s0"], horizon=2)["prediction"].tolist()
    with Registry.open(root) as reg:
        loaded = reg.load_model("shop=s0")
        got = np.asarray(loaded.predict([{"t": "2025-01-02", "y_lag1": first[0]}]))
    assert got.tolist() == pytest.approx(first[1:])


def test_a_future_table_at_the_moved_dates_gives_the_features(tmp_path: Path) -> None:
    data = shops_panel(MONTH_STARTS).assign(price=lambda f: 1.0 + (f.index % 5))
    data["y"] = 10 * data["price"]
    overrides = {"features": ["price"], "lags": None, "holidays": HOLIDAYS}
    summary = train(shops_spec(**overrides), data, tmp_path / "r", backend="local")
    assert summary.run.n_trained == 3, summary.failures
    future = pd.DataFrame(
        {"shop": "s0", "t": NEXT_STARTS[:2], "price": [7.0, 9.0]}
    )  # 2025-01-02: the step a forecast takes
    got = forecast(tmp_path / "r", ["shop=s0"], horizon=2, future=future)
    assert list(got["t"]) == list(NEXT_STARTS[:2])
    assert got["prediction"].tolist() == pytest.approx([70.0, 90.0])


def test_month_ends_and_quarter_starts_move_back_and_forth() -> None:
    ends = advance(["2024-11-29"], "BME", 3, None, HOLIDAYS)
    assert [str(t.date()) for t in ends] == ["2024-12-30", "2025-01-31", "2025-02-28"]
    quarters = advance(["2024-10-01", "2023-10-02"], "3BMS", 2, None, HOLIDAYS)
    assert [str(t.date()) for t in quarters] == [
        "2025-01-02", "2025-04-01", "2024-01-02", "2024-04-01",
    ]  # fmt: skip
    back = retreat(["2025-01-02", "2025-01-01", "2025-02-03"], "BMS", None, HOLIDAYS)
    assert [str(t.date()) if not pd.isna(t) else None for t in back] == [
        "2024-12-02", None, "2025-01-02",
    ]  # fmt: skip
    zoned = advance(["2024-12-02T09:00:00+01:00"], "BMS", 1, "Europe/Berlin", HOLIDAYS)
    assert str(zoned[0]) == "2025-01-02 09:00:00+01:00"


def test_month_ends_moved_by_a_holiday_train_as_bme(tmp_path: Path) -> None:
    days = pd.date_range("2022-01-31", "2025-01-31", freq=ENDS)
    assert pd.Timestamp("2024-12-30") in set(days)
    trained_shops(tmp_path / "r", days, holidays=HOLIDAYS)
    with Registry.open(tmp_path / "r") as reg:
        plan = reg.get_version("shop=s0").schema.forecast
    assert plan is not None and plan.frequency == "BME" and plan.holidays == HOLIDAYS
    got = forecast(tmp_path / "r", ["shop=s1"], horizon=12)
    assert pd.Timestamp("2025-12-31") in set(got["t"])  # 2024-12-31 is listed, not 2025's
    assert list(got["t"]) == list(pd.date_range("2025-02-28", periods=12, freq=ENDS))


def test_quarter_starts_moved_by_a_holiday_train_as_3bms(tmp_path: Path) -> None:
    days = pd.date_range("2021-01-01", "2024-10-01", freq=STARTS)[::3]
    assert pd.Timestamp("2024-01-02") in set(days)
    trained_shops(tmp_path / "r", days, holidays=HOLIDAYS)
    got = forecast(tmp_path / "r", ["shop=s0"], horizon=2)
    assert [str(t.date()) for t in got["t"]] == ["2025-01-02", "2025-04-01"]


def test_month_starts_without_holidays_forecast_as_before(tmp_path: Path) -> None:
    trained_shops(tmp_path / "r", pd.date_range("2022-02-01", "2024-11-01", freq="BMS"))
    got = forecast(tmp_path / "r", ["shop=s0"], horizon=2)
    assert [str(t.date()) for t in got["t"]] == ["2024-12-02", "2025-01-01"]


def test_a_closure_left_out_of_holidays_is_the_one_date_named() -> None:
    """Month starts whose Januaries 2022 and 2023 a closure moved (2022-01-04 after
    2022-01-03), with only 2024's and 2025's New Year listed: no ``BMS``, and the warning said
    "36 time(s) are neither a month's start nor its end", shown at 2021-05-03 - May's first
    business day, fine - not at the dates the missing closures moved."""
    closed = ["2022-01-03", "2023-01-02", "2024-01-01", "2025-01-01"]
    days = pd.date_range("2021-01-01", "2024-12-01", freq=pd.offsets.CustomBusinessMonthBegin(
        holidays=closed))  # fmt: skip
    table = prepare(Spec.from_dict(shops_spec(holidays=closed[2:])), shops_panel(days))[0]
    (warning,) = [w for w in table.extra["warnings"] if "start nor its end" in w]
    assert warning.startswith(
        "6 time(s) are neither a month's start nor its end (nor its first or last business "
        "day, less the spec's holidays), among times that are (e.g. 'shop=s0' at 2022-01-04"
    ), warning
    assert prepare(Spec.from_dict(shops_spec(holidays=closed)), shops_panel(days))[0].extra.get(
        "frequency") == "BMS"  # fmt: skip
