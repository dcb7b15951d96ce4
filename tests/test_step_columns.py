"""Tests for manymodels.step_columns: a recursive forecast of a partition with text features
transforms its steps' rows once, and answers exactly what ``Pipeline.predict`` of each step's
row answers (the same bits), for a scaled and an unscaled numeric block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import manymodels as mm
from manymodels.step_columns import StepColumns

HORIZON = 6


def daily(n_series: int = 3, days: int = 60) -> pd.DataFrame:
    """Daily counts with a price, a text 'event' and a text 'dept' per item: the shape of a
    retail panel, small."""
    rng = np.random.default_rng(3)
    frames = []
    for i in range(n_series):
        times = pd.date_range("2025-01-01", periods=days, freq="D")
        event = np.where(times.day == 14, "payday", "none")
        price = np.round(rng.uniform(1, 5, days), 2)
        sales = rng.poisson(3 + 2 * (event == "payday") + 1 / price).astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "item": f"i{i}",
                    "date": times,
                    "price": price,
                    "event": event,
                    "dept": "FOODS" if i % 2 else "HOBBIES",
                    "sales": sales,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def spec(scale: bool) -> dict[str, object]:
    return {
        "name": "steps",
        "task": "regression",
        "partition_by": ["item"],
        "target": "sales",
        "time_column": "date",
        "features": ["price", "event", "dept"],
        "lags": [1, 2],
        "rolling": [{"lag": 1, "window": 3, "stat": "mean"}],
        "min_rows": 20,
        "validation": {"strategy": "last", "size": 7},
        "selection": {"naive_candidate": False},
        "candidates": [
            {"estimator": "sklearn.linear_model.Ridge", "scale": scale, "params": {"alpha": [1.0]}}
        ],
    }


def step_by_step(loaded: mm.LoadedModel, history: pd.DataFrame) -> list[float]:
    """The recursive forecast by hand through the whole pipeline, one row a step: the last
    row's price, event and dept carried forward, lags from the previous steps' predictions."""
    y = list(history["sales"])
    last = history.iloc[-1]
    out = []
    for _ in range(HORIZON):
        row = {
            "price": last["price"],
            "event": last["event"],
            "dept": last["dept"],
            "sales_lag1": y[-1],
            "sales_lag2": y[-2],
            "sales_roll_mean_lag1_w3": float(np.mean(y[-3:])),
        }
        frame = pd.DataFrame([row])[list(loaded.features)]
        pred = float(loaded.model.predict(frame)[0])
        out.append(pred)
        y.append(pred)
    return out


@pytest.mark.parametrize("scale", [True, False])
def test_recursive_steps_match_the_pipeline_bit_for_bit(tmp_path: Path, scale: bool) -> None:
    frame = daily()
    root = tmp_path / "reg"
    summary = mm.train(spec(scale), frame, registry=root, backend="local")
    assert summary.run.n_trained == 3
    got = mm.forecast(root, horizon=HORIZON)
    with mm.Registry.open(root) as reg:
        for item, history in frame.groupby("item"):
            loaded = reg.load_model(item)
            features = list(loaded.features)
            lags = [j for j, f in enumerate(features) if f.startswith("sales_")]
            split = StepColumns.of(loaded.model, features, lags)
            assert split is not None  # the preprocessing is done once: this path is tested
            assert len(split.placed) == 3
            assert all((m is None) == (not scale) for _, _, m, _ in split.placed)
            mine = got[got["item"] == item]["prediction"].to_list()
            assert mine == step_by_step(loaded, history)  # exact, not approximate


def test_models_without_a_column_transformer_keep_predict() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.arange(20, dtype=float).reshape(10, 2)
    plain = Ridge().fit(X, X[:, 0])
    assert StepColumns.of(plain, ["a", "b"], [1]) is None
    scaled = make_pipeline(StandardScaler(), Ridge()).fit(X, X[:, 0])
    assert StepColumns.of(scaled, ["a", "b"], [1]) is None
