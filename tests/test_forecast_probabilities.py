"""``forecast(..., probabilities=True)`` / ``manymodels forecast --probabilities``: each step's
class probabilities as ``proba-<class>`` columns, as ``score`` writes them: every class of the
table, 0 for one a partition never held, the same columns in every chunk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels import forecast_select
from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.samples import sensor_readings

runner = CliRunner()
CLASSES = ["high", "low", "mid"]
NAMES = [f"proba-{c}" for c in CLASSES]
SPEC: dict[str, Any] = {
    "name": "tiers",
    "task": "classification",
    "partition_by": ["shop"],
    "target": "y",
    "time_column": "day",
    "features": ["x"],
    "calendar": ["day_of_week"],
    "metric": "accuracy",
    "min_rows": 20,
    "validation": {"strategy": "last", "size": 0.25},
    "candidates": [
        {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": [500]}}
    ],
}


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Daily shops: a and b hold three classes, c never holds 'mid'."""
    rng = np.random.default_rng(0)
    frames = []
    for shop, held in (("a", CLASSES), ("b", CLASSES), ("c", ["high", "low"])):
        x = rng.normal(size=90)
        y = np.where(x > 0.4, "high", np.where(x < -0.4, "low", "mid"))
        day = pd.date_range("2024-01-01", periods=90, freq="D")
        frames.append(
            pd.DataFrame(
                {"shop": shop, "day": day, "x": x, "y": np.where(np.isin(y, held), y, "low")}
            )
        )
    root = tmp_path_factory.mktemp("fproba") / "reg"
    assert train(SPEC, pd.concat(frames), root, backend="local").run.n_trained == 3
    return root


def test_every_step_has_a_column_per_class(
    tiers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = forecast(tiers, horizon=3, probabilities=True)
    assert [c for c in frame.columns if c.startswith("proba-")] == NAMES
    np.testing.assert_allclose(frame[NAMES].sum(axis=1), 1.0)
    most = frame[NAMES].to_numpy().argmax(axis=1)
    assert frame["prediction"].tolist() == [CLASSES[i] for i in most]
    assert (frame.loc[frame.shop == "c", "proba-mid"] == 0).all()
    assert not any(c.startswith("proba-") for c in forecast(tiers, horizon=3).columns)

    monkeypatch.setattr(forecast_select, "CHUNK", 1)  # written a partition at a time
    out = tmp_path / "f.csv"
    args = ["forecast", "--registry", str(tiers), "--horizon", "3", "--out", str(out)]
    result = runner.invoke(app, [*args, "--probabilities"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, parse_dates=["day"])
    pd.testing.assert_frame_equal(written, frame, check_dtype=False)


def _recursive_pumps(root: Path) -> pd.DataFrame:
    """Two pumps' classifiers on a lag of their target, trained into ``root``, and their
    4-step forecast with probabilities: a lag shorter than the horizon, so each step has
    its own input."""
    spec = {
        **SPEC, "partition_by": ["asset"], "target": "failure_within_24h", "time_column": "ts",
        "features": ["temperature", "vibration"], "lags": [1], "calendar": ["day_of_week"],
    }  # fmt: skip
    train(spec, sensor_readings(n_assets=2, readings=80), root, backend="local")
    return forecast(root, horizon=4, probabilities=True)


def test_a_recursive_forecast_has_each_steps_own(tmp_path: Path) -> None:
    """Lags shorter than the horizon: one input per step, each with its probabilities."""
    frame = _recursive_pumps(tmp_path / "reg")
    assert [c for c in frame.columns if c.startswith("proba-")] == ["proba-0", "proba-1"]
    assert (
        frame["prediction"].tolist()
        == frame[["proba-0", "proba-1"]].to_numpy().argmax(axis=1).tolist()
    )


def test_a_regression_is_refused_in_one_line(samples_dir: Path, tmp_path: Path) -> None:
    sales = pd.read_csv(samples_dir / "store_sales.csv")
    root = tmp_path / "reg"
    train(samples_dir / "store_sales_forecast.toml", sales[sales.store == 2], root, backend="local")
    with pytest.raises(DataError, match="regression"):
        forecast(root, horizon=2, probabilities=True)
    args = ["forecast", "--registry", str(root), "--horizon", "2", "--probabilities"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and line.startswith("error: ") and "--probabilities" in line


# ------------------------------------------------- the router's forecast ?probabilities=true
def _client(root: Path) -> Any:
    import warnings

    from serving.app import create_app
    from serving.settings import Settings

    with warnings.catch_warnings():  # Starlette prefers httpx2; warnings are errors here
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    return TestClient(create_app(Settings(registry=root)))


def test_the_router_forecast_answers_each_steps_probabilities_as_the_cli(tiers: Path) -> None:
    """``POST /v1/partitions/{key}/forecast`` had no ``?probabilities=`` (a 422 naming it),
    where ``forecast --probabilities`` writes them and ``/v1/predict`` answers them."""
    frame = forecast(tiers, horizon=3, probabilities=True)
    with _client(tiers) as c:
        for shop in ("a", "c"):
            r = c.post(f"/v1/partitions/shop={shop}/forecast?probabilities=true",
                       json={"horizon": 3})  # fmt: skip
            assert r.status_code == 200, r.text
            steps = r.json()["forecast"]
            mine = frame[frame.shop == shop]
            for step, (_, row) in zip(steps, mine.iterrows(), strict=True):
                assert list(step["probabilities"]) == CLASSES  # every class, as predict keys
                assert step["prediction"] == row["prediction"]
                np.testing.assert_allclose(
                    [step["probabilities"][c] for c in CLASSES], row[NAMES].to_numpy(float)
                )
            plain = c.post(f"/v1/partitions/shop={shop}/forecast", json={"horizon": 3})
            assert [s["probabilities"] for s in plain.json()["forecast"]] == [None] * 3
        twice = c.post("/v1/partitions/shop=a/forecast?probabilities=true&probabilities=false",
                       json={"horizon": 3})  # fmt: skip
        assert twice.status_code == 422 and "given 2 times" in twice.text, twice.text
        bad = c.post("/v1/partitions/shop=a/forecast?probabilities=maybe", json={"horizon": 3})
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["query", "probabilities"]


def test_a_recursive_router_forecast_has_each_steps_own(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    frame = _recursive_pumps(root)
    key = frame["asset"].iloc[0]
    with _client(root) as c:
        r = c.post(f"/v1/partitions/asset={key}/forecast?probabilities=1", json={"horizon": 4})
    assert r.status_code == 200, r.text
    got = [[s["probabilities"]["0"], s["probabilities"]["1"]] for s in r.json()["forecast"]]
    want = frame[frame.asset == key][["proba-0", "proba-1"]].to_numpy()
    np.testing.assert_allclose(got, want)


def test_a_regression_router_forecast_answers_null_probabilities_as_predict(
    samples_dir: Path, tmp_path: Path
) -> None:
    """As ``/v1/predict?probabilities=true`` answers a regressor's rows: ``null``."""
    sales = pd.read_csv(samples_dir / "store_sales.csv")
    root = tmp_path / "reg"
    train(samples_dir / "store_sales_forecast.toml", sales[sales.store == 2], root, backend="local")
    with _client(root) as c:
        key = "store=2,brand=tropicana"
        r = c.post(f"/v1/partitions/{key}/forecast?probabilities=true", json={"horizon": 2})
        assert r.status_code == 200, r.text
        assert [s["probabilities"] for s in r.json()["forecast"]] == [None, None]
        row = {"price": 2.5, "deal": 0, "feat": 1, "week_week": 5, "week_month": 2}
        row |= {"units_lag1": 9000.0, "units_lag2": 8000.0}
        p = c.post(f"/v1/partitions/{key}/predict?probabilities=true", json={"rows": [row]})
        assert p.status_code == 200 and p.json()["probabilities"] is None, p.text
