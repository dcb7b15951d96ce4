"""``score`` of a ``changes`` spec's raw rows with a missing price (``scoring.lag_columns``):
the empty cell is a missing value, its change and the next row's missing too, as the router
takes a ``null`` and the forecast a ``future`` without that price; not a refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_changes import changes_spec, priced

from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score_table


def test_a_missing_price_is_a_missing_change_in_a_score_table(tmp_path: Path) -> None:
    """pid 0's price at t = 26 left empty: score of the raw rows equals score of the same
    rows with price_change computed by hand (missing at 26 and 27), and the forecast with
    that ``future`` (HistGradientBoosting takes missing values)."""
    df = priced()
    hist = "sklearn.ensemble.HistGradientBoostingRegressor"
    spec = changes_spec(candidates=[{"estimator": hist, "params": {"max_iter": 20}}])
    with Registry(tmp_path / "reg") as reg:
        train(spec, df[df["t"] < 25], reg, backend="local")
    df.loc[(df["pid"] == 0) & (df["t"] == 26), "price"] = np.nan
    held = df[df["t"] >= 25]
    raw = score_table(held[["pid", "t", "price"]], tmp_path / "reg").frame
    by_hand = df.assign(price_change=df.groupby("pid")["price"].diff()).loc[held.index]
    assert by_hand["price_change"].isna().sum() == 2
    given = score_table(by_hand[["pid", "t", "price", "price_change"]], tmp_path / "reg").frame
    np.testing.assert_array_equal(raw["prediction"], given["prediction"])
    fc = forecast(tmp_path / "reg", horizon=5, future=held[["pid", "t", "price"]])
    np.testing.assert_allclose(
        raw.sort_values(["pid", "t"])["prediction"], fc["prediction"], rtol=1e-12
    )
