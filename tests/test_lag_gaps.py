"""A partition whose times skip periods, with target lags in the spec, is warned of (#lags
count rows): before, a daily series missing two days trained with "lag 1" reading the target
of three days back, and nothing said so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.pipeline import train


def panel(times: dict[str, Any]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame({"shop": shop, "t": t, "x": rng.normal(size=len(t))}).assign(
            y=rng.normal(size=len(t))
        )
        for shop, t in times.items()
    ]
    return pd.concat(frames, ignore_index=True)


def spec(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "shops", "partition_by": ["shop"], "target": "y", "time_column": "t",
        "features": ["x"], "lags": [1], "validation": {"strategy": "last", "size": 4},
        "candidates": [{"estimator": "sklearn.linear_model.LinearRegression"}],
        "fallback": {"enabled": False},
    }  # fmt: skip
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def warnings_of(data: pd.DataFrame, root: Path, **overrides: Any) -> list[str]:
    summary = train(spec(**overrides), data, root, backend="local")
    assert summary.run.n_trained == len(data["shop"].unique()), summary.failures
    return [w for w in summary.run.options.get("warnings", []) if "skip periods" in w]


def test_a_daily_partition_missing_days_is_named_with_its_gap(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    gappy = days.delete([3, 4])  # January 4th and 5th
    (warning,) = warnings_of(panel({"a": days, "b": gappy, "c": days}), tmp_path / "r")
    assert warning.startswith("1 partition(s) skip periods of their 1D times, e.g. 'shop=b' ")
    assert "from 2024-01-03T00:00:00 to 2024-01-06T00:00:00" in warning, warning


def test_integer_periods_with_a_gap_are_named(tmp_path: Path) -> None:
    t = np.arange(30)
    (warning,) = warnings_of(panel({"a": t, "b": np.delete(t, 10)}), tmp_path / "r")
    assert "'shop=b' from 9 to 11" in warning, warning


@pytest.mark.parametrize(
    "times",
    [
        pd.date_range("2024-01-01", periods=30, freq="D"),
        pd.bdate_range("2024-01-01", periods=30),  # weekends are no gap of business days
        pd.date_range("2022-01-01", periods=30, freq="MS"),  # nor February's 28 days
        pd.date_range("2022-01-31", periods=30, freq="ME"),
    ],
    ids=["days", "business-days", "month-starts", "month-ends"],
)
def test_complete_series_are_not_warned_of(tmp_path: Path, times: pd.DatetimeIndex) -> None:
    assert warnings_of(panel({"a": times, "b": times}), tmp_path / "r") == []


def test_without_lags_a_gap_is_no_concern(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    data = panel({"a": days, "b": days.delete([3, 4])})
    assert warnings_of(data, tmp_path / "r", lags=None) == []
