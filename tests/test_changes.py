"""Feature changes (``changes = ["price"]``, manymodels/changes.py): computed the same way in
training, forecasting, batch scoring, ``LoadedModel.predict`` and the router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import spec_dict

from manymodels.data import prepare
from manymodels.exceptions import DataError, InvalidRows, SpecError
from manymodels.forecast import forecast
from manymodels.monitoring.profile import with_lags
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec
from serving.local import running_server
from serving.settings import Settings

LINEAR = "sklearn.linear_model.LinearRegression"


def priced(n: int = 30, partitions: int = 3, seed: int = 0, dates: bool = False) -> pd.DataFrame:
    """Sales that fall by half each price rise, around a drifting level, per partition."""
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(partitions):
        price = 100 + np.cumsum(rng.normal(1.0, 3.0, n))
        sales = 300 - 0.5 * price + np.cumsum(rng.normal(0, 0.2, n)) + 10 * p
        t: Any = pd.date_range("2020-01-01", periods=n, freq="MS") if dates else np.arange(n)
        frames.append(pd.DataFrame({"pid": p, "t": t, "y": sales, "price": price}))
    return pd.concat(frames, ignore_index=True)


def changes_spec(**overrides: Any) -> dict[str, Any]:
    return spec_dict(
        features=["price"],
        changes=["price"],
        min_rows=5,
        candidates=[{"estimator": LINEAR}],
        validation={"strategy": "last", "size": 5},
        selection={"naive_candidate": False},
        **overrides,
    )


# ------------------------------------------------------------------ the spec
@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"changes": ["y"]}, "'y' is a key, the target or the time column"),
        ({"changes": ["t"]}, "'t' is a key, the target or the time column"),
        ({"changes": ["deal"]}, "'deal' is not one of the features"),
        ({"changes": []}, "is empty"),
        ({"changes": ["price", "price"]}, "lists a value twice"),
        ({"time_column": None, "validation": {"strategy": "holdout"}},
         "changes needs a time_column"),
        ({"features": ["price", "price_change"]}, "'price_change' is derived from"),
        ({"features": ["price", "deal"], "categorical": ["deal"], "changes": ["deal"]},
         "'deal' is categorical"),
    ],
)  # fmt: skip
def test_spec_errors_name_the_column(change: dict[str, Any], text: str) -> None:
    with pytest.raises(SpecError, match=text):
        Spec.from_dict({**changes_spec(), **change})


def test_a_spec_without_changes_keeps_its_hash() -> None:
    """Added after specs were stored: left out of the hash while it holds its default."""
    plain = Spec.from_dict(spec_dict())
    data = plain.model_dump(mode="json")
    data.pop("changes")
    assert "changes" not in Spec.from_dict({k: v for k, v in data.items() if v is not None})
    assert plain.spec_hash == Spec.from_dict({**spec_dict(), "changes": None}).spec_hash
    assert plain.spec_hash != Spec.from_dict(changes_spec()).spec_hash


# ------------------------------------------------------------------ training
def test_each_row_holds_its_change_and_the_first_is_not_trained_on(tmp_path: Path) -> None:
    df = priced(n=12)
    table, _ = prepare(Spec.from_dict(changes_spec()), df)
    at = table.features.index("price_change")
    for i in range(len(table)):
        rows = table.rows(i)
        price = df.loc[df["pid"] == table.key_values[i][0], "price"].to_numpy()
        got = table.X[rows, at]
        assert np.isnan(got[0])
        np.testing.assert_allclose(got[1:], np.diff(price), rtol=0, atol=1e-12)
    with Registry(tmp_path / "reg") as reg:
        train(changes_spec(), df, reg, backend="local")
        version = reg.get_partition("pid=0").production
    assert version is not None
    assert version.feature_schema["forecast"]["changes"] == {"price_change": "price"}
    assert version.validation["dropped"] == {"undefined_lags": 1}


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (lambda df: df.drop(columns="price"), r"missing column\(s\) 'price'"),
        (lambda df: df.assign(price=df["price"].map(lambda v: f"p{v:.0f}")),
         "'price', a column of text; a change needs numbers"),
    ],
)  # fmt: skip
def test_a_change_of_a_missing_or_text_column_is_refused(frame: Any, text: str) -> None:
    spec = {**changes_spec(), "features": None}
    with pytest.raises(DataError, match=text):
        prepare(Spec.from_dict(spec), frame(priced(n=12)))


# ------------------------------------------------------------------ forecasting and rows
def _trained(root: Path, df: pd.DataFrame, **overrides: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on all but the last 5 periods; return (held-out rows, their forecast)."""
    last = df["t"].sort_values().unique()[-5]
    history, held = df[df["t"] < last], df[df["t"] >= last]
    with Registry(root) as reg:
        train(changes_spec(**overrides), history, reg, backend="local")
    future = held[["pid", "t", "price"]]
    return held, forecast(root, horizon=5, future=future)


def test_the_forecast_differences_the_future_prices_from_the_last_trained_one(
    tmp_path: Path,
) -> None:
    """Step 1's change is from the history's last price, each later one from the step
    before; the model gets [price, price_change] as training built them."""
    df = priced()
    held, fc = _trained(tmp_path / "reg", df)
    with Registry.open(tmp_path / "reg") as reg:
        model = reg.load_model("pid=1").model
    price = df.loc[df["pid"] == 1, "price"].to_numpy()
    X = np.column_stack([price[-5:], price[-5:] - price[-6:-1]])
    got = fc.loc[fc["pid"] == 1, "prediction"].to_numpy()
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-12)
    assert np.abs(got - held.loc[held["pid"] == 1, "y"].to_numpy()).max() < 3


def test_rows_by_time_get_the_forecasts_changes_in_python_and_over_http(tmp_path: Path) -> None:
    """A row that gives its time and price gets its change from the row of the period before
    it in the request, or from the history for the first period; a row whose previous price
    is nowhere is a 422 naming the row and the change, over real HTTP too."""
    df = priced(dates=True)
    held, fc = _trained(tmp_path / "reg", df, lags=[5], target_transform="difference")
    expected = fc.loc[fc["pid"] == 2, "prediction"].to_numpy()
    mine = held[held["pid"] == 2]
    pairs = zip(mine["t"], mine["price"], strict=True)
    rows = [{"t": t.isoformat(), "price": float(p)} for t, p in pairs]
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=2")
    # a difference model answers from the previous target: post each period's actual
    posted = [{**r, "y": float(y)} for r, y in zip(rows, mine["y"], strict=True)]
    first = loaded.predict(rows[:1])
    np.testing.assert_allclose(first, expected[:1], rtol=1e-12)
    later = loaded.predict([*posted[:2], rows[2]])
    # period 3's change as the forecast predicted it, added to period 2's posted actual
    change = expected[2] - expected[1]
    assert later[2] == pytest.approx(posted[1]["y"] + change, rel=1e-12)
    with pytest.raises(InvalidRows, match="'price_change' needs 'price' of the period before"):
        loaded.predict([rows[2]])
    with pytest.raises(InvalidRows, match="send 'price' as a number"):
        loaded.predict([{"t": rows[0]["t"]}])

    with running_server(Settings(registry=tmp_path / "reg")) as url:
        import httpx

        ok = httpx.post(f"{url}/v1/partitions/pid=2/predict", json={"rows": rows[:1]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == pytest.approx(expected[:1], rel=1e-12)
        bad = httpx.post(f"{url}/v1/partitions/pid=2/predict", json={"rows": [rows[3]]})
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["body", "rows", 0, "price_change"]


def test_a_table_by_time_gets_the_forecasts_changes(tmp_path: Path) -> None:
    """``LoadedModel.predict`` of a table without the change column computes it as the
    forecast did, whatever the rows' order: each row's price minus the previous period's."""
    df = priced()
    held, fc = _trained(tmp_path / "reg", df)
    expected = fc.loc[fc["pid"] == 0, "prediction"].to_numpy()
    with Registry.open(tmp_path / "reg") as reg:
        framed = reg.load_model("pid=0").predict(held[held["pid"] == 0][["t", "price"]][::-1])
    np.testing.assert_allclose(framed, expected[::-1], rtol=1e-12)


def test_the_drift_monitor_still_derives_lags_beside_a_change(tmp_path: Path) -> None:
    """Sampled rows carry no previous price: the monitor fills their lags and leaves the
    change uncounted, rather than losing the lags too."""
    df = priced()
    _trained(tmp_path / "reg", df, lags=[5])
    with Registry.open(tmp_path / "reg") as reg:
        schema = reg.load_model("pid=0").version.feature_schema
    last = int(schema["history"]["time"])
    filled = with_lags([{"t": last + 1, "price": 1.0}], schema)
    assert filled[0]["y_lag5"] == pytest.approx(schema["history"]["target"][-5])
    assert "price_change" not in filled[0]
