"""Tests for manymodels.samples and the committed CSVs in data-samples/."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manymodels.samples import sensor_readings, store_sales, synthetic, user_activity

DATA = Path(__file__).resolve().parents[1] / "data-samples"

GENERATORS: dict[str, Callable[..., pd.DataFrame]] = {
    "store_sales": store_sales,
    "sensor_readings": sensor_readings,
    "user_activity": user_activity,
}
TIME_COLUMNS = {"store_sales": "week", "sensor_readings": "ts", "user_activity": "day"}


def _kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Column -> one of int/float/str/datetime, independent of pandas' exact dtype flavour."""
    out = {}
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_integer_dtype(dtype):
            out[name] = "int"
        elif pd.api.types.is_float_dtype(dtype):
            out[name] = "float"
        elif pd.api.types.is_datetime64_dtype(dtype):
            out[name] = "datetime"
        elif pd.api.types.is_string_dtype(dtype):
            out[name] = "str"
        else:
            out[name] = str(dtype)
    return out


def test_store_sales_schema_and_shape() -> None:
    df = store_sales()
    assert _kinds(df) == {
        "store": "int",
        "brand": "str",
        "week": "datetime",
        "price": "float",
        "deal": "int",
        "feat": "int",
        "units": "float",
    }
    sizes = df.groupby(["store", "brand"]).size()
    assert len(sizes) == 12 * 3
    assert len(df) == 34 * 60 + 2 * 10
    assert set(df["brand"]) == {"tropicana", "minute_maid", "dominicks"}
    assert df["week"].min() == pd.Timestamp("2024-01-01")
    assert (df["week"].dt.day_of_week == 0).all()  # Mondays
    assert set(df["deal"]) == {0, 1} and set(df["feat"]) == {0, 1}
    assert (df["units"] > 0).all() and (df["price"] > 0).all()
    assert df.groupby(["store", "brand"])["price"].nunique().min() > 5  # price varies
    # brand-dependent prices: premium brand dearer than the store brand
    mean_price = df.groupby("brand")["price"].mean()
    assert mean_price["tropicana"] > mean_price["minute_maid"] > mean_price["dominicks"]
    # sorted by partition then week
    assert df.equals(df.sort_values(["store", "brand", "week"], kind="stable"))


def test_store_sales_short_partitions_are_recent_and_below_min_rows() -> None:
    df = store_sales()
    sizes = df.groupby(["store", "brand"]).size()
    short = sizes[sizes < 20]
    assert len(short) == 2
    assert (short == 10).all()
    last_week = df["week"].max()
    for store, brand in short.index:
        part = df[(df["store"] == store) & (df["brand"] == brand)]
        assert part["week"].max() == last_week  # new products: the most recent weeks


def test_store_sales_partitions_have_different_elasticities() -> None:
    """Per-partition models must have something to learn that a global one cannot."""
    df = store_sales()
    slopes = []
    for _, part in df.groupby(["store", "brand"]):
        if len(part) >= 20:
            t = 2 * np.pi * (part["week"] - part["week"].min()).dt.days.to_numpy() / 364
            season = [np.sin(t), np.cos(t)]
            x = np.column_stack(
                [np.ones(len(part)), np.log(part["price"]), part["deal"], part["feat"], *season]
            )
            coef, *_ = np.linalg.lstsq(x, np.log(part["units"]), rcond=None)
            slopes.append(coef[1])
    slopes_arr = np.array(slopes)
    assert (slopes_arr < 0).all()  # demand falls with price everywhere...
    assert slopes_arr.max() - slopes_arr.min() > 1.5  # ...but by very different amounts


def test_sensor_readings_schema_and_shape() -> None:
    df = sensor_readings()
    assert _kinds(df) == {
        "asset": "str",
        "site": "str",
        "ts": "datetime",
        "temperature": "float",
        "vibration": "float",
        "pressure": "float",
        "rpm": "float",
        "hours_since_service": "float",
        "failure_within_24h": "int",
    }
    assert len(df) == 20 * 150
    assert df["asset"].nunique() == 20
    assert df["asset"].str.fullmatch(r"pump-\d{3}").all()
    assert 2 <= df["site"].nunique() <= 5
    assert (df.groupby("asset")["site"].nunique() == 1).all()
    assert set(df["failure_within_24h"]) == {0, 1}
    assert 0.10 <= df["failure_within_24h"].mean() <= 0.20
    assert (df["hours_since_service"] >= 0).all()
    steps = df.groupby("asset")["ts"].diff().dropna()
    assert (steps == pd.Timedelta(hours=1)).all()


@pytest.mark.parametrize(("n_assets", "readings", "seed"), [(20, 150, 0), (7, 20, 3), (30, 97, 11)])
def test_sensor_every_asset_has_both_classes_in_last_quarter(
    n_assets: int, readings: int, seed: int
) -> None:
    df = sensor_readings(n_assets=n_assets, readings=readings, seed=seed)
    for asset, part in df.groupby("asset"):
        tail = part["failure_within_24h"].tail(len(part) // 4)
        head = part["failure_within_24h"].head(len(part) - len(part) // 4)
        assert set(tail) == {0, 1}, asset
        assert set(head) == {0, 1}, asset  # the training window can learn both too


def test_sensor_limits_are_asset_specific() -> None:
    """Healthy vibration of one pump is a failure signal for another: no global threshold."""
    df = sensor_readings()
    healthy_max = df[df["failure_within_24h"] == 0].groupby("asset")["vibration"].max()
    failing_min = df[df["failure_within_24h"] == 1].groupby("asset")["vibration"].min()
    assert healthy_max.max() > failing_min.min()


def test_user_activity_schema_and_shape() -> None:
    df = user_activity()
    assert _kinds(df) == {
        "user_id": "str",
        "plan": "str",
        "day": "datetime",
        "sessions": "int",
        "pages": "int",
        "notifications": "int",
        "weekend": "int",
        "minutes_active": "float",
    }
    assert len(df) == 60 * 45
    assert df["user_id"].nunique() == 60
    assert df["user_id"].str.fullmatch(r"u\d{4}").all()
    assert set(df["plan"]) == {"free", "pro"}
    assert (df.groupby("user_id")["plan"].nunique() == 1).all()
    assert (df["weekend"] == (df["day"].dt.day_of_week >= 5).astype(int)).all()
    assert (df["minutes_active"] >= 0).all()
    assert (df.loc[df["sessions"] == 0, "minutes_active"] == 0).all()
    assert (df.loc[df["sessions"] > 0, "minutes_active"] > 0).all()


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generators_are_deterministic_by_seed(name: str) -> None:
    make = GENERATORS[name]
    a, b, c = make(seed=5), make(seed=5), make(seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_synthetic_regression_shape_and_order() -> None:
    df = synthetic(50, 7, n_features=3, seed=1, key_name="store_id")
    assert list(df.columns) == ["store_id", "t", "x0", "x1", "x2", "y"]
    assert _kinds(df) == {
        "store_id": "int",
        "t": "int",
        "x0": "float",
        "x1": "float",
        "x2": "float",
        "y": "float",
    }
    assert len(df) == 350
    assert df["store_id"].nunique() == 50
    assert (df.groupby("store_id").size() == 7).all()
    np.testing.assert_array_equal(df["store_id"], np.repeat(np.arange(50), 7))
    np.testing.assert_array_equal(df["t"], np.tile(np.arange(7), 50))
    pd.testing.assert_frame_equal(df, synthetic(50, 7, n_features=3, seed=1, key_name="store_id"))
    assert not df.equals(synthetic(50, 7, n_features=3, seed=2, key_name="store_id"))


def test_synthetic_partitions_follow_different_linear_rules() -> None:
    df = synthetic(4, 400, n_features=2, seed=0)
    coefs = []
    for _, part in df.groupby("pid"):
        x = np.column_stack([np.ones(len(part)), part[["x0", "x1"]]])
        coef, res, *_ = np.linalg.lstsq(x, part["y"], rcond=None)
        assert res[0] / len(part) < 0.5  # linear + modest noise
        coefs.append(coef)
    assert np.ptp(np.array(coefs)[:, 1]) > 0.3


def test_synthetic_classification_has_both_classes_per_partition() -> None:
    df = synthetic(2000, 3, task="classification", seed=4)
    assert _kinds(df)["y"] == "int"
    assert set(df["y"]) == {0, 1}
    per_part = df.groupby("pid")["y"].agg(["min", "max"])
    assert (per_part["min"] == 0).all() and (per_part["max"] == 1).all()


def test_synthetic_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="task"):
        synthetic(3, 5, task="ranking")
    with pytest.raises(ValueError, match="clashes"):
        synthetic(3, 5, key_name="x0")
    with pytest.raises(ValueError):
        synthetic(3, 1, task="classification")


def test_synthetic_builds_100k_partitions_in_key_then_time_order() -> None:
    """The benchmarks' 100,000-partition table (its speed is theirs to report: no timed
    unit tests)."""
    df = synthetic(100_000, 20)
    assert len(df) == 2_000_000 and df["pid"].iloc[-1] == 99_999
    assert df["pid"].is_monotonic_increasing
    assert (df.groupby("pid")["t"].diff().dropna() > 0).all()


@pytest.mark.parametrize("name", list(GENERATORS))
def test_committed_csv_matches_generator(name: str) -> None:
    """The committed data never drifts: rerun `python data-samples/generate.py samples`."""
    path = DATA / f"{name}.csv"
    assert path.stat().st_size < 600 * 1024
    committed = pd.read_csv(path, parse_dates=[TIME_COLUMNS[name]])
    fresh = GENERATORS[name]()
    assert list(committed.columns) == list(fresh.columns)
    assert _kinds(committed) == _kinds(fresh)
    pd.testing.assert_frame_equal(
        committed, fresh, check_dtype=False, check_exact=False, rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("name", list(GENERATORS))
def test_spec_matches_its_sample(name: str) -> None:
    with open(DATA / f"{name}.toml", "rb") as f:
        spec = tomllib.load(f)
    columns = set(pd.read_csv(DATA / f"{name}.csv", nrows=5).columns)
    assert spec["name"] == name.replace("_", "-")
    assert spec["task"] in {"regression", "classification"}
    used = {*spec["partition_by"], spec["target"], spec["time_column"]}
    used |= set(spec.get("features", [])) | set(spec.get("categorical", []))
    assert used <= columns
    assert set(spec.get("categorical", [])) <= set(spec.get("features", columns))
    assert spec["target"] not in spec.get("features", [])
    assert spec["candidates"] and all("." in c["estimator"] for c in spec["candidates"])
