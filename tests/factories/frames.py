"""Small frames with a known rule (linear, churn, noisy panels) and what training them shows:
the data the tests train on, made here rather than read from files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from manymodels.registry.entities import ModelVersion

if TYPE_CHECKING:
    from manymodels.run_summary import RunSummary


def churn_frame(
    *,
    seed: int,
    noise: float,
    users: int = 2,
    rows: int = 60,
    cut: float = 0.0,
    labels: Literal["text", "bool"] = "text",
) -> pd.DataFrame:
    """Users ``u0``, ``u1`` … of ``rows`` rows whose churn follows ``x1`` (where ``x1`` plus
    ``noise`` times a normal draw is above ``cut``), ``x2`` beside it: both labels throughout
    each user's rows, for a classifier per user. ``labels="text"``: a column ``label`` of
    "churn" / "stay"; ``"bool"``: a column ``churn`` of booleans, for a test to make labels of."""
    rng = np.random.default_rng(seed)
    parts = []
    for u in range(users):
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        churn = x1 + noise * rng.normal(size=rows) > cut
        if labels == "text":
            label = {"label": np.where(churn, "churn", "stay")}
        else:
            label = {"churn": churn}
        parts.append(pd.DataFrame({"user": f"u{u}", "x1": x1, "x2": x2, **label}))
    return pd.concat(parts, ignore_index=True)


def linear_frame(
    n_partitions: int = 3, rows: int = 30, *, seed: int = 0, shuffle: bool = False
) -> pd.DataFrame:
    """Partitions ``pid`` with their own linear rule on x0, x1, time ``t``, target ``y``."""
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(n_partitions):
        x = rng.normal(size=(rows, 2))
        w = rng.normal(size=2) * 3
        y = x @ w + p * 10 + rng.normal(scale=0.1, size=rows)
        frames.append(
            pd.DataFrame({"pid": p, "t": np.arange(rows), "x0": x[:, 0], "x1": x[:, 1], "y": y})
        )
    df = pd.concat(frames, ignore_index=True)
    if shuffle:
        df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return df


def noisy_panel(
    make: Callable[..., tuple[np.ndarray, np.ndarray]],
    columns: list[str],
    *,
    seed: int,
    partitions: int = 6,
    rows: int = 40,
) -> pd.DataFrame:
    """``partitions`` partitions ``pid`` of ``rows`` rows each, ``make(rows, seed=k)``'s
    features and target, the target's noise growing with ``k``; a time column ``t``."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(partitions):
        X, y = make(rows, seed=k)
        frame = pd.DataFrame(X, columns=columns)
        frames.append(frame.assign(pid=k, t=np.arange(rows), y=y + rng.normal(size=rows) * k))
    return pd.concat(frames, ignore_index=True)


def linear_series(
    n_series: int, n_rows: int, rng: np.random.Generator, *, widest: float = 3.0
) -> pd.DataFrame:
    """``y = a + b·x + noise`` per series (``series``, time ``t``), the noise N(0, σ) with σ
    from 1 to ``widest`` across series: errors that differ in scale, and in nothing else."""
    parts = []
    for s in range(n_series):
        x = rng.normal(size=n_rows)
        sigma = 1.0 + (widest - 1.0) * s / max(1, n_series - 1)
        y = rng.normal(10, 3) + rng.normal(2, 1) * x + rng.normal(0, sigma, n_rows)
        parts.append(pd.DataFrame({"series": s, "t": np.arange(n_rows), "x": x, "y": y}))
    return pd.concat(parts, ignore_index=True)


def retrained_to_a_tie(spec: dict[str, Any], df: pd.DataFrame, root: Path) -> list[ModelVersion]:
    """Train ``spec`` on ``df`` twice into ``root`` and check that every second version scored
    exactly as its champion refitted on the same rows and was not promoted — a comparison
    must not promote or keep on rounding. Returns the second versions."""
    from manymodels.pipeline import train
    from manymodels.registry.client import Registry

    for _ in range(2):
        train(spec, df, root, backend="local")
    with Registry.open(root) as reg:
        second = [reg.get_version(p.key, 2) for p in reg.list_partitions(limit=1000)]
    for v in second:
        ev = v.evaluation
        assert ev["basis"] == "refit" and ev["challenger_score"] == ev["champion_score"], ev
        assert not ev["promote"] and ev["reason"].startswith("identical to champion v1")
    return second


SHOPS_HOLIDAYS = ["2024-12-25", "2025-01-01"]
"""The holidays a shops test lists (``shops_spec(holidays=SHOPS_HOLIDAYS)``)."""
SHOPS_EXPECTED = pd.bdate_range("2024-12-23", periods=10, freq="C", holidays=SHOPS_HOLIDAYS)
"""The ten business days after Friday 2024-12-20 skipping ``SHOPS_HOLIDAYS``: what a shops
registry trained to 2024-12-20 forecasts."""


def shops_panel(days: pd.DatetimeIndex, shops: int = 3) -> pd.DataFrame:
    """Shops ``s0``, ``s1`` … with a level near 100 on every one of ``days`` (time ``t``,
    target ``y``): business-day data for the holiday tests, whose dates are the point."""
    rng = np.random.default_rng(0)
    return pd.concat(
        [
            pd.DataFrame({"shop": f"s{i}", "t": days, "y": 100 + rng.normal(size=len(days))})
            for i in range(shops)
        ],
        ignore_index=True,
    )


def shops_spec(**overrides: Any) -> dict[str, Any]:
    """A LinearRegression per shop of ``shops_panel`` on lags 1 and 2, the last 4 rows
    validate, no fallback: what every holiday test trains, ``holidays`` given by ``overrides``."""
    out: dict[str, Any] = {
        "name": "shops", "partition_by": ["shop"], "target": "y", "time_column": "t",
        "lags": [1, 2], "validation": {"strategy": "last", "size": 4},
        "candidates": [{"estimator": "sklearn.linear_model.LinearRegression"}],
        "fallback": {"enabled": False},
    }  # fmt: skip
    out.update(overrides)
    return out


def trained_shops(root: Path, days: pd.DatetimeIndex, **overrides: Any) -> RunSummary:
    """``shops_spec(**overrides)`` trained on ``shops_panel(days)`` into ``root``, every shop
    trained (checked here): the registry a holiday test forecasts from."""
    from manymodels.pipeline import train

    summary = train(shops_spec(**overrides), shops_panel(days), root, backend="local")
    assert summary.run.n_trained == 3, summary.failures
    return summary


def ridge_features(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Columns on very different scales, one constant and one constant up to rounding error
    (``StandardScaler`` scales both by 1), and a target that depends on some of them."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(size=rows) * 1000 + 5e4,
            rng.normal(size=rows) * 0.01,
            np.full(rows, 7.0),
            np.where(np.arange(rows) % 2, np.nextafter(1e5, np.inf), 1e5),  # one ulp apart
            rng.integers(0, 2, size=rows).astype(float),
        ]
    )
    y = 0.002 * X[:, 0] + 300 * X[:, 1] + 3 * X[:, 4] + rng.normal(size=rows)
    return X, y
