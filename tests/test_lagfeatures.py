"""Tests for manymodels.lagfeatures: target lags and rolling statistics for training
(``table_features``) and forecasting (``step_features``), the spec options that declare them,
and a train → forecast round trip on the direct and recursive paths."""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels import lagfeatures
from manymodels.cli import app
from manymodels.exceptions import DataError, InvalidRows, SpecError
from manymodels.feature_schema import FeatureSchema
from manymodels.forecasting import forecast
from manymodels.lagfeatures import (
    LagPlan,
    RollingFeature,
    fit_transforms,
    step_features,
    table_features,
)
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.rowlags import fill_rows
from manymodels.spec import Spec
from serving.app import create_app
from serving.settings import Settings

DAY = pd.Timedelta(days=1)
ROLLINGS = [
    RollingFeature(lag, window, stat)
    for lag, window, stat in itertools.product((1, 2, 3), (1, 2, 4), ("mean", "std", "min", "max"))
    if not (stat == "std" and window < 2)
]


# ------------------------------------------------------------------------ one feature code
@pytest.mark.parametrize("rolling", ROLLINGS, ids=lambda r: r.name("y"))
@pytest.mark.parametrize("lags", [(1,), (2, 3), (3, 7)])
def test_last_training_row_equals_the_forecast_step_features(
    lags: tuple[int, ...], rolling: RollingFeature
) -> None:
    """The same feature code serves training, scoring, the router and forecasting: the last
    row of each partition in ``table_features`` is what ``step_features`` derives from the rows
    before it, for every step the features can see (``step ≤`` the smallest lag)."""
    rng = np.random.default_rng(7)
    y = rng.normal(size=40) * 10
    offsets = np.array([0, 13, 40])
    plan = LagPlan("y", lags=lags, rolling=(rolling,))
    table = table_features(y, offsets, plan)
    assert table.shape == (40, 1 + len(lags))
    for lo, hi in itertools.pairwise(offsets.tolist()):
        for step in range(1, plan.min_lag + 1):  # type: ignore[operator]
            history = y[lo : hi - step]
            np.testing.assert_array_equal(step_features(history, plan, step)[0], table[hi - 1])
            short = history[-plan.depth :]  # what a version records: the last `depth` targets
            np.testing.assert_array_equal(step_features(short, plan, step)[0], table[hi - 1])


def test_rolling_windows_slide_over_the_lagged_series() -> None:
    y = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 100.0, 200.0])
    offsets = np.array([0, 6, 8])
    rolling = tuple(RollingFeature(2, 3, s) for s in ("mean", "std", "min", "max"))
    out = table_features(y, offsets, LagPlan("y", rolling=rolling))
    nan = np.nan
    expected_mean = [nan, nan, nan, nan, 7 / 3, 14 / 3, nan, nan]  # rows 4, 5: y[0:3], y[1:4]
    np.testing.assert_allclose(out[:, 0], expected_mean)
    np.testing.assert_allclose(out[4:6, 1], [np.std([1, 2, 4], ddof=1), np.std([2, 4, 8], ddof=1)])
    np.testing.assert_array_equal(out[4:6, 2], [1.0, 2.0])
    np.testing.assert_array_equal(out[4:6, 3], [4.0, 8.0])
    assert np.isnan(out[6:]).all()  # the second partition is too short for any window


def test_a_missing_target_in_a_window_makes_the_feature_missing() -> None:
    y = np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0])
    out = table_features(
        y, np.array([0, 6]), LagPlan("y", lags=(1,), rolling=(RollingFeature(1, 2),))
    )
    np.testing.assert_array_equal(np.isnan(out[:, 1]), [True, True, True, True, False, False])
    assert np.isnan(step_features(y[:3], LagPlan("y", rolling=(RollingFeature(1, 2),)))[0, 0])


def test_plan_names_depth_and_direct() -> None:
    plan = LagPlan("units", lags=(8, 9, 12), rolling=(RollingFeature(8, 4),))
    assert plan.columns == ["units_lag8", "units_lag9", "units_lag12", "units_roll_mean_lag8_w4"]
    assert plan.depth == 12
    assert LagPlan("y", rolling=(RollingFeature(8, 6, "max"),)).depth == 13
    assert not plan.direct  # no horizon known
    assert plan.with_horizon(8).direct and not plan.with_horizon(9).direct
    assert LagPlan("y").with_horizon(50).direct  # nothing reads a prediction
    with pytest.raises(ValueError, match="lag 8 is not known 9 step"):
        step_features(np.zeros(12), plan, 9)


def test_plan_from_spec_matches_the_columns_training_adds() -> None:
    spec = Spec.from_dict(
        spec_dict(lags=[2], rolling=[{"lag": 3, "window": 2, "stat": "max"}], calendar=None)
    )
    assert LagPlan.from_spec(spec).columns == ["y_lag2", "y_roll_max_lag3_w2"]
    assert spec.derived_columns == ["y_lag2", "y_roll_max_lag3_w2"]


# ------------------------------------------------------------------------------ the spec
@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"rolling": [{"lag": 0, "window": 2}]}, "rolling[0].lag"),
        ({"rolling": [{"lag": 1, "window": 0}]}, "rolling[0].window"),
        ({"rolling": [{"lag": 1, "window": 2, "stat": "median"}]}, "rolling[0].stat"),
        ({"rolling": [{"lag": 1, "window": 1, "stat": "std"}]}, "std needs a window of at least 2"),
        ({"rolling": [{"lag": 1}]}, "rolling[0].window: required key is missing"),
        ({"rolling": [{"lag": 1, "window": 2, "how": "x"}]}, "rolling[0].how: unknown key"),
        ({"rolling": []}, "rolling: is empty"),
        ({"rolling": [{"lag": 1, "window": 2}] * 2}, "rolling: lists a value twice"),
        ({"rolling": [{"lag": 1, "window": 2}], "time_column": None,
          "validation": {"strategy": "holdout"}}, "rolling needs a time_column"),
        ({"rolling": [{"lag": 1, "window": 2}], "features": ["x0", "y_roll_mean_lag1_w2"]},
         "'y_roll_mean_lag1_w2' is derived"),
        ({"target_transform": "log"}, "target_transform"),
        ({"target_transform": "scale"}, "target_transform needs a regression task with lags"),
    ],
)  # fmt: skip
def test_spec_errors_name_the_field(change: dict[str, object], text: str) -> None:
    with pytest.raises(SpecError) as info:
        Spec.from_dict(spec_dict(**change))
    assert text in str(info.value)


def test_specs_without_rolling_keep_their_hash() -> None:
    plain = Spec.from_dict(spec_dict(lags=[1]))
    assert Spec.from_dict(spec_dict(lags=[1], target_transform="none")).spec_hash == (
        plain.spec_hash
    )
    rolled = Spec.from_dict(spec_dict(lags=[1], rolling=[{"lag": 1, "window": 2}]))
    assert rolled.spec_hash != plain.spec_hash


# ------------------------------------------------------------------ train → forecast
def seasonal_frame(n_partitions: int = 2, rows: int = 40) -> pd.DataFrame:
    """Keys, time and target only (no feature column): a level per partition, a period-4
    pattern and noise."""
    rng = np.random.default_rng(3)
    frames = []
    for p in range(n_partitions):
        t = np.arange(rows)
        y = 50.0 * (p + 1) + 5 * np.sin(t * np.pi / 2) + rng.normal(scale=0.5, size=rows)
        frames.append(pd.DataFrame({"pid": p, "t": t, "y": y}))
    return pd.concat(frames, ignore_index=True)


def by_hand(model: object, y: np.ndarray, plan: LagPlan, horizon: int) -> list[float]:
    """Each step's lags and rolling means computed here, with numpy, from the series and the
    predictions so far (the forecast's own arithmetic is not used)."""
    series = list(y)
    out = []
    for _ in range(horizon):
        row = [series[-k] for k in plan.lags]
        row += [float(np.mean(series[len(series) - r.depth : len(series) - r.lag + 1]))
                for r in plan.rolling]  # fmt: skip
        pred = float(model.predict(np.array([row]))[0])  # type: ignore[attr-defined]
        out.append(pred)
        series.append(pred)
    return out


@pytest.mark.parametrize("horizon", [3, 6])
def test_train_then_forecast_direct_and_recursive(tmp_path: Path, horizon: int) -> None:
    """lags ≥ 3 and a rolling mean of lag 3: a horizon of 3 is direct (one predict), 6 is
    recursive; both equal the forecast computed by hand. The table has no feature column of its
    own: lags and the rolling mean are its features."""
    df = seasonal_frame()
    spec = spec_dict(
        lags=[3, 4],
        rolling=[{"lag": 3, "window": 4, "stat": "mean"}],
        validation={"strategy": "last", "size": 5},
        selection={"naive_candidate": False},
    )
    plan = LagPlan.from_spec(Spec.from_dict(spec), horizon)
    assert plan.direct is (horizon == 3)
    with Registry(tmp_path / "reg") as reg:
        summary = train(spec, df, reg, backend="local")
        assert summary.run.n_trained == 2
        version = reg.get_version("pid=1")
        assert version.feature_schema["features"] == ["y_lag3", "y_lag4", "y_roll_mean_lag3_w4"]
        assert version.n_rows == 40 - 6  # the first 6 rows have no full window
        assert len(version.feature_schema["history"]["target"]) == plan.depth == 6
        model = reg.load_model("pid=1").model
        frame = forecast(reg, horizon=horizon)
    assert len(frame) == 2 * horizon
    assert frame["t"].tolist()[:horizon] == list(range(40, 40 + horizon))
    got = frame.loc[frame["pid"] == 1, "prediction"].to_numpy()
    expected = by_hand(model, df.loc[df["pid"] == 1, "y"].to_numpy(), plan, horizon)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.abs(got - 100).max() < 15  # near partition 1's level, not a runaway recursion


# ------------------------------------------------------------------ target transforms
def test_transforms_are_per_partition_and_invert() -> None:
    y = np.array([10.0, 12.0, 14.0, 1000.0, 1010.0, 1030.0])
    offsets = np.array([0, 3, 6])
    scaled, fitted = fit_transforms(y, offsets, "scale")
    np.testing.assert_allclose(scaled[:3], [-1.2247449, 0, 1.2247449], atol=1e-6)
    assert fitted[1].center == pytest.approx(1013.3333333)
    np.testing.assert_allclose(fitted[1].invert(scaled[3:], np.nan), y[3:])
    diffs, fitted = fit_transforms(y, offsets, "difference")
    np.testing.assert_array_equal(diffs, [np.nan, 2, 2, np.nan, 10, 20])
    np.testing.assert_array_equal(fitted[0].invert(np.array([1.0, 3.0]), 14.0), [15.0, 18.0])
    constant, fitted = fit_transforms(np.full(4, 5.0), np.array([0, 4]), "scale")
    assert fitted[0].spread == 1.0 and (constant == 0).all()  # no division by zero


def test_auto_difference_resolves_per_partition() -> None:
    """A trending partition is differenced, a partition of noise around a level is left as
    given (kind ``none``), in one table."""
    rng = np.random.default_rng(2)
    y = np.concatenate([np.arange(50.0) + rng.normal(0, 0.5, 50), 10 + rng.normal(0, 1, 50)])
    out, fitted = fit_transforms(y, np.array([0, 50, 100]), "auto_difference")
    assert [f.kind for f in fitted] == ["difference", "none"]
    np.testing.assert_array_equal(out[1:50], np.diff(y[:50]))
    assert np.isnan(out[0])
    np.testing.assert_array_equal(out[50:], y[50:])


@pytest.mark.parametrize("kind", ["scale", "difference"])
def test_train_then_forecast_with_a_target_transform(tmp_path: Path, kind: str) -> None:
    """The model learns the transformed target (lags taken from it); the forecast turns its
    predictions back with the partition's own transform; the stored rows stay as given."""
    df = seasonal_frame()
    df.loc[df["pid"] == 1, "y"] += 1000.0  # levels far apart
    spec = spec_dict(
        lags=[2, 3],
        rolling=[{"lag": 2, "window": 2}],
        target_transform=kind,
        validation={"strategy": "last", "size": 5},
        selection={"naive_candidate": False},
    )
    plan = LagPlan.from_spec(Spec.from_dict(spec), 4)
    raw = df.loc[df["pid"] == 1, "y"].to_numpy()
    transformed, fitted = fit_transforms(raw, np.array([0, len(raw)]), kind)  # type: ignore[arg-type]
    with Registry(tmp_path / "reg") as reg:
        train(spec, df, reg, backend="local")
        version = reg.get_version("pid=1")
        model = reg.load_model("pid=1").model
        rows = reg.training_rows("pid=1", version.version)
        frame = forecast(reg, horizon=4)
    np.testing.assert_array_equal(rows["y"].to_numpy(), raw)  # kept as given, not transformed
    history = version.feature_schema["history"]
    assert history["target"] == pytest.approx(transformed[-plan.depth :].tolist())
    assert history["transform"]["kind"] == kind
    steps = by_hand(model, transformed, plan, 4)
    expected = fitted[0].invert(np.array(steps), raw[-1])
    got = frame.loc[frame["pid"] == 1, "prediction"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.abs(got - raw.mean()).max() < 15  # in the partition's units again


# ------------------------------------------------------------------ lags at serve time
def test_rows_without_lags_get_them_from_the_history(tmp_path: Path) -> None:
    """A row that gives its time instead of its lags is scored with the features its forecast
    step would have — in Python and through the router's /predict; a lag the history cannot
    supply, or a time that is not one of the next periods, is a 422 naming it."""
    spec = spec_dict(
        lags=[3, 4],
        rolling=[{"lag": 3, "window": 4, "stat": "mean"}],
        validation={"strategy": "last", "size": 5},
        selection={"naive_candidate": False},
    )
    with Registry(tmp_path / "reg") as reg:
        train(spec, seasonal_frame(), reg, backend="local")
        stepped = forecast(reg, ["pid=1"], horizon=3)["prediction"].to_numpy()
        loaded = reg.load_model("pid=1")
        by_time = loaded.predict([{"t": 40}, {"t": 41}, {"t": 42}])
        framed = loaded.predict(pd.DataFrame({"t": [42, 40]}))
        with pytest.raises(InvalidRows, match=r"'y_lag3' of a row 4 period.* period 1 after"):
            loaded.predict([{"t": 43}])
        # a posted actual for period 40 makes lag 3 of period 43 known, for this request only
        posted = loaded.predict([{"t": 40, "y": 123.0}, {"t": 43}])
    np.testing.assert_allclose(by_time, stepped, rtol=1e-12)
    np.testing.assert_allclose(framed, stepped[[2, 0]], rtol=1e-12)
    y = seasonal_frame().query("pid == 1")["y"].to_numpy()
    row43 = [123.0, y[-1], [*y[-3:], 123.0]]  # y_lag3, y_lag4, the window of y_roll_mean_lag3_w4
    expected = loaded.model.predict(np.array([[row43[0], row43[1], np.mean(row43[2])]]))[0]
    assert posted[1] == pytest.approx(expected, rel=1e-12)

    with warnings.catch_warnings():  # Starlette prefers httpx2; warnings are errors here
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(Settings(registry=tmp_path / "reg"))) as client:
        url = "/v1/partitions/pid=1/predict"
        ok = client.post(url, json={"rows": [{"t": 41}]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == pytest.approx([stepped[1]], rel=1e-12)
        late = client.post(url, json={"rows": [{"t": 41}, {"t": 44}]})
        assert late.status_code == 422
        assert late.json()["detail"][0]["loc"] == ["body", "rows", 1, "y_lag3"]
        before = client.post(url, json={"rows": [{"t": 39}]})
        assert before.status_code == 422 and "not one of the periods after" in before.text


def test_rolling_blocks_do_not_change_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long tables gather their windows a block of rows at a time; the result is the same."""
    y = np.random.default_rng(1).normal(size=50)
    plan = LagPlan("y", rolling=(RollingFeature(2, 5, "std"), RollingFeature(1, 3, "max")))
    whole = table_features(y, np.array([0, 20, 50]), plan)
    monkeypatch.setattr(lagfeatures, "_BLOCK", 7)
    np.testing.assert_array_equal(table_features(y, np.array([0, 20, 50]), plan), whole)


def test_posted_actuals_are_transformed_like_the_history() -> None:
    """With ``difference``, a posted target becomes its change from the period before (the
    version's last level for the first period) before it feeds a lag."""
    schema = {
        "target": "y",
        "time_column": "t",
        "forecast": {"frequency": 1, "calendar": {}, "lags": {"y_lag1": 1, "y_lag2": 2}},
        "history": {"time": 9, "target": [0.5, 2.0], "transform": {
            "kind": "difference", "center": 0.0, "spread": 1.0, "last": 100.0}},
    }  # fmt: skip
    rows: list[dict[str, Any]] = [{"t": 10, "y": 104.0}, {"t": 11, "y": 101.0}, {"t": 12}]
    filled = fill_rows(rows, FeatureSchema.parse(schema))
    assert (filled[0]["y_lag1"], filled[0]["y_lag2"]) == (2.0, 0.5)
    assert (filled[1]["y_lag1"], filled[1]["y_lag2"]) == (4.0, 2.0)  # 104 − 100
    assert (filled[2]["y_lag1"], filled[2]["y_lag2"]) == (-3.0, 4.0)  # 101 − 104


@pytest.mark.parametrize(
    "change",
    [
        {"lags": [1]},
        {"rolling": [{"lag": 2, "window": 2, "stat": "mean"}]},
        {"lags": [2], "target_transform": "difference"},
    ],
)
def test_two_rows_at_one_time_are_refused_where_lags_read_the_order(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    """A lag of a period holding two rows was whichever the sort put first: the model
    depended on the file's row order, which the data fingerprint ignores."""
    df = linear_frame(2, 30)
    doubled = pd.concat([df, df[(df["pid"] == 1) & (df["t"] == 7)].assign(y=99.0)])
    with pytest.raises(DataError) as caught:
        train(spec_dict(**change), doubled, tmp_path / "reg", backend="local")
    assert str(caught.value) == (
        "<DataFrame>: 1 partition(s) hold two or more rows at one time, e.g. 'pid=1' at 7: "
        "target lags need one row per period — sum or average such rows, or drop the duplicates"
    )
    assert not (tmp_path / "reg").exists()  # refused before the registry was made
    # without lags the rows are samples like any others, and train
    assert train(spec_dict(), doubled, tmp_path / "plain", backend="local").run.n_trained == 2


def test_the_cli_names_the_file_and_a_dated_time(tmp_path: Path) -> None:
    df = linear_frame(2, 30).assign(t=lambda d: pd.Timestamp("2024-01-01") + d["t"] * DAY)
    path = tmp_path / "doubled.csv"
    pd.concat([df, df.iloc[[40]]]).to_csv(path, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "d"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\nlags = [1]\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    result = CliRunner().invoke(
        app, ["train", str(spec), str(path), "--registry", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {path}: 1 partition(s) hold two or more rows at one time, e.g. 'pid=1' at "
        "2024-01-11T00:00:00: target lags need one row per period — sum or average such rows, "
        "or drop the duplicates"
    )


@pytest.mark.parametrize("zone", ["Europe/Berlin", None])
def test_a_rows_time_must_be_of_the_series_kind_with_or_without_an_offset(
    tmp_path: Path, zone: str | None
) -> None:
    """Hourly times in Berlin: a wall time without its UTC offset, read as UTC, matched the
    period an hour away and took its lags silently; it is refused, saying to give the offset.
    A series without a zone refuses a time with one, the other way round."""
    df = linear_frame(1, 48)
    df["t"] = pd.date_range("2024-03-04", periods=48, freq="h", tz=zone)
    train(spec_dict(lags=[1, 2]), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=0")
        nxt = pd.Timestamp("2024-03-06", tz=zone)  # the period after the last training hour
        own = loaded.predict([{"t": nxt.isoformat(), "x0": 0.1, "x1": 0.2}])
        other = nxt.tz_localize(None) if zone else nxt.tz_localize("UTC")
        with pytest.raises(InvalidRows) as caught:
            loaded.predict([{"t": other.isoformat(), "x0": 0.1, "x1": 0.2}])
    assert len(own) == 1 and np.isfinite(own[0])
    said = caught.value.errors[0]["msg"]
    assert ("give the time with its UTC offset" if zone else "without a UTC offset") in said


@pytest.mark.parametrize("zone", ["Europe/Berlin", None])
def test_the_fallback_takes_a_time_of_the_series_kind_as_a_partitions_version_does(
    tmp_path: Path, zone: str | None
) -> None:
    """Daily times with calendar parts derived from a row's time: a partition's version
    refused a time of the other kind (with a UTC offset on a series without one, or without
    on one in Berlin), while the fallback, answering an unknown key on the same routes,
    took it and read its calendar parts from whatever offset it came with (a 200 on
    `/v1/partitions/pid=99/predict`, a 422 on `pid=0`'s). Both now refuse it, saying why,
    and both take a time of the series' kind."""
    df = linear_frame(2, 40)
    df["t"] = np.tile(pd.date_range("2024-01-01", periods=40, freq="D", tz=zone), 2)
    spec = spec_dict(calendar=["day_of_week"], fallback={"enabled": True}, min_rows=5)
    assert train(spec, df, tmp_path / "reg", backend="local").run.n_trained == 2
    nxt = pd.Timestamp("2024-02-10", tz=zone)
    other = nxt.tz_localize(None) if zone else nxt.tz_localize("UTC")
    said = "give the time with its UTC offset" if zone else "give the time without a UTC offset"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(Settings(registry=tmp_path / "reg"))) as client:
        for key, fallback in (("pid=0", False), ("pid=99", True)):
            url = f"/v1/partitions/{key}/predict"
            own = client.post(url, json={"rows": [{"t": nxt.isoformat(), "x0": 0.1, "x1": 0.2}]})
            assert own.status_code == 200, own.text
            assert own.json()["fallback"] is fallback
            r = client.post(url, json={"rows": [{"t": other.isoformat(), "x0": 0.1, "x1": 0.2}]})
            assert r.status_code == 422, (key, r.text)
            assert said in r.json()["detail"][0]["msg"], r.text
        batch = [{"pid": p, "t": other.isoformat(), "x0": 0.1, "x1": 0.2} for p in (0, 99)]
        r = client.post("/v1/predict", json={"rows": batch})
        assert r.status_code == 422, r.text
        assert [d["loc"][2] for d in r.json()["detail"]] == [0, 1], r.text


def test_calendar_parts_of_a_row_far_past_the_last_time_come_from_its_time(
    tmp_path: Path,
) -> None:
    """A version deriving calendar parts only needs no history for them: a row five periods
    past its last time, giving its time, gets the parts its forecast step five would (it was
    refused as a time its lags do not reach)."""
    df = linear_frame(1, 40)
    df["t"] = pd.date_range("2024-01-01", periods=40, freq="W-MON")
    train(spec_dict(calendar=["month"]), df, tmp_path / "reg", backend="local")
    ahead = forecast(tmp_path / "reg", ["pid=0"], horizon=5)
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=0")
        fifth = ahead["t"].iloc[4]
        got = loaded.predict([{"t": fifth.isoformat(), "x0": 0.0, "x1": 0.0}])
        month = int(fifth.month)
        want = loaded.predict([{"t_month": month, "x0": 0.0, "x1": 0.0}])
        with pytest.raises(InvalidRows, match="UTC offset"):  # a date of another kind still is not
            loaded.predict([{"t": f"{fifth.isoformat()}+05:00", "x0": 0.0, "x1": 0.0}])
    assert got.tolist() == want.tolist()


def test_an_older_zone_aware_version_without_its_zone_recorded_matches_offset_times(
    tmp_path: Path,
) -> None:
    """Versions from before zones were recorded carry the offset in their last time alone:
    rows given with their offset still match (a review found them refused), and a day's
    calendar part is the series' day however the time's offset is written."""
    df = linear_frame(1, 30)
    df["t"] = pd.date_range("2024-04-01", periods=30, freq="D", tz="Europe/Berlin")
    train(spec_dict(lags=[1], calendar=["day_of_week"]), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        schema = reg.get_version("pid=0").schema
    assert schema.forecast is not None and schema.forecast.timezone == "Europe/Berlin"
    older = dataclasses.replace(
        schema, forecast=dataclasses.replace(schema.forecast, timezone=None)
    )
    nxt = pd.Timestamp("2024-05-01", tz="Europe/Berlin")  # a Wednesday
    row: dict[str, Any] = {"t": nxt.isoformat(), "x0": 0.0, "x1": 0.0}
    want = fill_rows([row], schema)[0]
    assert fill_rows([row], older)[0] == want and want["t_day_of_week"] == 2
    in_utc = {**row, "t": nxt.tz_convert("UTC").isoformat()}  # Tuesday 22:00 UTC
    assert fill_rows([in_utc], schema)[0]["t_day_of_week"] == 2  # the series' Wednesday
    assert fill_rows([in_utc], older)[0]["t_day_of_week"] == 2  # on its last time's offset
    with pytest.raises(InvalidRows, match="with its UTC offset"):
        fill_rows([{**row, "t": "2024-05-01T00:00:00"}], older)


def test_an_older_zone_aware_versions_change_steps_back_on_its_own_clock(tmp_path: Path) -> None:
    """Monthly in Berlin, zone not recorded: the period before July 1st 00:00+02:00 is June
    1st on the series' clock; stepped back on naive UTC stamps (June 30th 22:00) a month
    begin was never reached, and the change was refused."""
    df = linear_frame(1, 30)
    df["t"] = pd.date_range("2022-01-01", periods=30, freq="MS", tz="Europe/Berlin")
    train(spec_dict(lags=[1], changes=["x0"]), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        schema = reg.get_version("pid=0").schema
    assert schema.forecast is not None and schema.history is not None
    older = dataclasses.replace(
        schema, forecast=dataclasses.replace(schema.forecast, timezone=None)
    )
    row = {"t": "2024-07-01T00:00:00+02:00", "x0": 1.0, "x1": 0.0}
    want = fill_rows([row], schema)[0]
    assert fill_rows([row], older)[0] == want
    assert want["x0_change"] == pytest.approx(1.0 - schema.history.features["x0"])
