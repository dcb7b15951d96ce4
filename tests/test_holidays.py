"""A spec's ``holidays``: business-day data (``B``, ``C-<days>``) forecast onto Christmas and
New Year's Day before — ``manymodels forecast --horizon 10`` after 2024-12-20 gave
2024-12-25 and 2025-01-01 among its steps, and nothing could tell it those days are closed.
Now the dates the spec lists are skipped as ``CustomBusinessDay(holidays=...)`` skips them:
in the forecast's steps (CLI, library and router), in the period before a time, and by the
lag-gap check; a version trained before forecasts as it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import (
    SHOPS_EXPECTED,
    SHOPS_HOLIDAYS,
    open_client,
    shops_panel,
    shops_spec,
    trained_shops,
)
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import SpecError
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec
from manymodels.timefeatures import advance, retreat
from serving.settings import Settings


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("holidays") / "registry"
    trained_shops(root, pd.bdate_range("2024-01-02", "2024-12-20"), holidays=SHOPS_HOLIDAYS)
    return root


def test_cli_forecast_skips_the_listed_holidays(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "next.csv"
    args = ["forecast", "--registry", str(root), "--horizon", "10", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, parse_dates=["t"])
    for _, rows in table.groupby("shop"):
        assert list(rows["t"]) == list(SHOPS_EXPECTED)
    assert not table["t"].isin(pd.to_datetime(SHOPS_HOLIDAYS)).any()
    assert np.isfinite(table["prediction"]).all()


def test_library_and_router_forecasts_skip_them_too(root: Path) -> None:
    frame = forecast(root, horizon=10)
    assert list(frame[frame["shop"] == "s0"]["t"]) == list(SHOPS_EXPECTED)
    with open_client(Settings(registry=root)) as client:
        r = client.post("/v1/partitions/shop=s1/forecast", json={"horizon": 10})
        assert r.status_code == 200, r.text
        times = [step["time"] for step in r.json()["forecast"]]
        assert pd.to_datetime(times).tolist() == list(SHOPS_EXPECTED), times


def test_the_version_records_them_with_its_forecast_plan(root: Path) -> None:
    with Registry.open(root) as reg:
        version = reg.get_version("shop=s0")
    assert version.schema.forecast is not None
    assert version.schema.forecast.holidays == SHOPS_HOLIDAYS
    assert version.schema.forecast.frequency == "B"


def test_a_version_trained_without_holidays_forecasts_onto_them_as_before(
    tmp_path: Path,
) -> None:
    trained_shops(tmp_path / "r", pd.bdate_range("2024-01-02", "2024-12-20"))
    times = forecast(tmp_path / "r", horizon=10)["t"]
    assert pd.Timestamp("2024-12-25") in set(times)


def test_custom_weekdays_skip_holidays_and_missing_rows_on_them_are_no_gap(
    tmp_path: Path,
) -> None:
    """A shop open Monday to Saturday whose table has no rows on its listed holidays (more
    of them than the lag-gap check guesses as holidays alone) is no gap, and forecasts skip
    them."""
    mask = "Mon Tue Wed Thu Fri Sat"
    closed = ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04", "2024-05-06",
              "2024-12-25", "2024-12-26", "2025-01-01"]  # fmt: skip
    days = pd.bdate_range("2024-01-02", "2024-12-21", freq="C", weekmask=mask, holidays=closed)
    summary = trained_shops(tmp_path / "r", days, holidays=closed)
    assert not [w for w in summary.run.options.get("warnings", []) if "skip periods" in w]
    got = forecast(tmp_path / "r", horizon=8)
    want = pd.bdate_range("2024-12-23", periods=8, freq="C", weekmask=mask, holidays=closed)
    assert list(got[got["shop"] == "s2"]["t"]) == list(want)
    summary = trained_shops(tmp_path / "before", days)  # the same table without the spec's list
    assert [w for w in summary.run.options.get("warnings", []) if "skip periods" in w]


def test_steps_back_and_forth_skip_holidays_vectorised() -> None:
    last = ["2024-12-24", "2024-12-31", "2024-12-20"]
    steps = advance(last, "B", 2, None, SHOPS_HOLIDAYS)
    assert [str(t.date()) for t in steps] == [
        "2024-12-26", "2024-12-27", "2025-01-02", "2025-01-03", "2024-12-23", "2024-12-24",
    ]  # fmt: skip
    back = retreat(["2024-12-26", "2025-01-02", "2024-12-25"], "B", None, SHOPS_HOLIDAYS)
    assert [str(t.date()) if not pd.isna(t) else None for t in back] == [
        "2024-12-24", "2024-12-31", None,
    ]  # fmt: skip
    zoned = advance(["2024-12-24T00:00:00+01:00"], "B", 1, "Europe/Berlin", SHOPS_HOLIDAYS)
    assert str(zoned[0]) == "2024-12-26 00:00:00+01:00"


@pytest.mark.parametrize(
    ("holidays", "shown"),
    [
        (["2024-13-01"], "holidays: '2024-13-01' is not a date"),
        (["2024-12-25T10:00"], "holidays: '2024-12-25T10:00' is not a date"),
        ([20241225], "holidays: 20241225 is not a date"),
        ("2024-12-25", "holidays: '2024-12-25' is one date, not a list of dates"),
        (20241225.0, "holidays: is not a list of dates"),
    ],
)
def test_a_bad_date_is_one_line_naming_the_key(holidays: Any, shown: str) -> None:
    with pytest.raises(SpecError, match=shown) as e:
        Spec.from_dict(shops_spec(holidays=holidays))
    assert "\n" not in str(e.value)


def test_a_bad_date_in_a_toml_spec_fails_the_cli_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\npartition_by = ["shop"]\ntarget = "y"\ntime_column = "t"\n'
        'holidays = [2024-12-25, "2025-02-30"]\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    data = tmp_path / "d.csv"
    shops_panel(pd.bdate_range("2024-01-02", periods=30)).to_csv(data, index=False)
    result = CliRunner().invoke(app, ["train", str(path), str(data), "--registry", "r"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "holidays" in lines[0] and "'2025-02-30' is not a date" in lines[0]


def test_toml_dates_read_as_iso_dates() -> None:
    import tomllib

    doc = tomllib.loads('holidays = [2025-01-01, "2024-12-25", 2024-12-25]')
    assert Spec.from_dict(shops_spec(**doc)).holidays == SHOPS_HOLIDAYS


def test_holidays_need_a_time_column() -> None:
    with pytest.raises(SpecError, match="holidays needs a time_column"):
        Spec.from_dict(
            shops_spec(holidays=SHOPS_HOLIDAYS, time_column=None, lags=None, validation={})
        )


def test_holidays_of_daily_data_are_not_used_and_said_so(tmp_path: Path) -> None:
    days = pd.date_range("2024-10-01", "2024-12-20", freq="D")
    summary = trained_shops(tmp_path / "r", days, holidays=SHOPS_HOLIDAYS)
    said = [w for w in summary.run.options.get("warnings", []) if "holidays" in w]
    assert said == [
        "holidays are not used: the table's frequency is 1D, not business days (B, or "
        "C-<days> for some weekdays) nor business months (BMS, BME); holidays only skip "
        "business days"
    ]
    with Registry.open(tmp_path / "r") as reg:
        plan = reg.get_version("shop=s0").schema.forecast
    assert plan is not None and plan.holidays == []
    assert pd.Timestamp("2024-12-25") in set(forecast(tmp_path / "r", horizon=10)["t"])


def test_a_spec_without_holidays_keeps_its_hash() -> None:
    assert (
        Spec.from_dict(shops_spec()).spec_hash
        == Spec.from_dict(shops_spec(holidays=None)).spec_hash
    )
    assert (
        Spec.from_dict(shops_spec()).spec_hash
        != Spec.from_dict(shops_spec(holidays=SHOPS_HOLIDAYS)).spec_hash
    )
    assert json.dumps(Spec.from_dict(shops_spec()).to_dict()).find("holidays") == -1


def test_an_empty_list_of_holidays_is_none() -> None:
    """``holidays = []`` closes no day: the spec hashes as one without holidays (a run of
    either resumes under the other), and it needs no time column."""
    empty = Spec.from_dict(shops_spec(holidays=[]))
    assert empty.holidays is None
    assert empty.spec_hash == Spec.from_dict(shops_spec()).spec_hash
    untimed = shops_spec(
        holidays=(), time_column=None, lags=None, validation={"strategy": "holdout"}
    )
    assert Spec.from_dict(untimed).holidays is None


def test_partitions_of_two_specs_step_by_their_own_holidays(tmp_path: Path) -> None:
    """One forecast of a registry holding versions with holidays and versions without: each
    partition's steps are its own plan's, not the first partition's of the batch."""
    days = pd.bdate_range("2024-01-02", "2024-12-20")
    root = tmp_path / "r"
    trained_shops(root, days, holidays=SHOPS_HOLIDAYS)
    other = shops_panel(days).assign(shop=lambda f: "t" + f["shop"])
    assert train(shops_spec(name="others"), other, root, backend="local").run.n_trained == 3
    got = forecast(root, horizon=10)
    for shop, rows in got.groupby("shop"):
        has = pd.Timestamp("2024-12-25") in set(rows["t"])
        assert has == str(shop).startswith("t"), (shop, list(rows["t"]))


def test_rows_on_a_listed_holiday_are_warned_of(tmp_path: Path) -> None:
    """Lags count a row on a listed holiday as a period where forecasts skip the date: the
    run says so, naming the first such row."""
    days = pd.bdate_range("2024-01-02", "2024-12-20")
    summary = trained_shops(tmp_path / "r", days, holidays=["2024-07-04", *SHOPS_HOLIDAYS])
    said = [w for w in summary.run.options.get("warnings", []) if "holidays" in w]
    assert said == [
        "3 partition(s) have rows on dates the spec lists as holidays, e.g. 'shop=s0' on "
        "2024-07-04: lags count them as periods, forecasts skip them; drop those rows or "
        "the dates from holidays"
    ]
    quiet = trained_shops(
        tmp_path / "q", days.drop(pd.Timestamp("2024-07-04")), holidays=["2024-07-04"]
    )
    assert not [w for w in quiet.run.options.get("warnings", []) if "holidays" in w]


def test_a_rows_period_before_skips_holidays_for_its_change(tmp_path: Path) -> None:
    """A row scored by its time takes its feature's change from the period before it: for
    2024-12-26 that is 2024-12-24 (the version's last row) when 12-25 is a holiday, where
    12-25 was looked for and the row was refused as having no previous period."""
    days = pd.bdate_range("2024-01-02", "2024-12-24")
    data = shops_panel(days).assign(price=lambda f: 1.0 + (f.index % 7))
    overrides = {"features": ["price"], "changes": ["price"], "lags": None}
    summary = train(
        shops_spec(**overrides, holidays=SHOPS_HOLIDAYS), data, tmp_path / "r", backend="local"
    )
    assert summary.run.n_trained == 3, summary.failures
    with Registry.open(tmp_path / "r") as reg:
        loaded = reg.load_model("shop=s0")
        last = float(data[data["shop"] == "s0"]["price"].iloc[-1])
        got = loaded.predict([{"t": "2024-12-26", "price": last + 2.0}])
        same = loaded.predict([{"t": "2024-12-26", "price": last + 2.0, "price_change": 2.0}])
    assert np.asarray(got).tolist() == pytest.approx(np.asarray(same).tolist())


def test_a_row_given_by_its_time_reads_its_lags_across_a_holiday(tmp_path: Path) -> None:
    """A row giving only its time, 2024-12-26, is the first period after the version's last
    (12-24) when 12-25 is a holiday: its lags come from the history, as the forecast's do.
    It was the second period, whose lag 1 (12-25's target) no one had posted."""
    root = tmp_path / "r"
    trained_shops(root, pd.bdate_range("2024-01-02", "2024-12-24"), holidays=SHOPS_HOLIDAYS)
    with Registry.open(root) as reg:
        loaded = reg.load_model("shop=s0")
        got = float(np.asarray(loaded.predict([{"t": "2024-12-26"}]))[0])
    first = forecast(root, ["shop=s0"], horizon=1)
    assert list(first["t"]) == [pd.Timestamp("2024-12-26")]
    assert got == pytest.approx(float(first["prediction"].iloc[0]))
