"""Drift of features that take few values: a 0/1 flag, a constant, a count mostly 0. Each
value that spans several training deciles is binned on its own
(``monitoring.profile.numeric_stats``), so a change in how often it occurs, or a value never
seen above it, is drift like any other."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from factories import RIDGE

from manymodels.monitoring import drift as drift_scores
from manymodels.monitoring import profile as prof
from manymodels.monitoring.report import Thresholds
from manymodels.pipeline import train
from serving.app import create_app
from serving.settings import Settings

SPEC: dict[str, Any] = {
    "name": "flags",
    "partition_by": ["pid"],
    "target": "y",
    "features": ["x", "deal"],
    "candidates": [{"estimator": RIDGE}],
    "validation": {"strategy": "holdout", "size": 0.2},
    "fallback": {"enabled": False},
}
ROWS = 200


def _frame(seed: int, deal: list[Any], rows: int = ROWS) -> pd.DataFrame:
    """Partition p's ``deal`` from ``deal[p](rng, rows)``; ``x`` standard normal."""
    rng = np.random.default_rng(seed)
    parts = []
    for p, draw in enumerate(deal):
        x = rng.normal(size=rows)
        d = draw(rng, rows)
        y = 2 * x + 3 * d + p + rng.normal(scale=0.1, size=rows)
        parts.append(pd.DataFrame({"pid": p, "x": x, "deal": d, "y": y}))
    return pd.concat(parts, ignore_index=True)


def never(rng: Any, n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int64)


def always(rng: Any, n: int) -> np.ndarray:
    return np.ones(n, dtype=np.int64)


def rarely(rng: Any, n: int) -> np.ndarray:  # 3 % of rows
    return (rng.random(n) < 0.03).astype(np.int64)


def mostly(rng: Any, n: int) -> np.ndarray:  # 80 % of rows
    return (rng.random(n) < 0.8).astype(np.int64)


def test_a_flag_never_or_rarely_set_in_training_and_set_in_most_traffic_drifts(
    tmp_path: Path,
) -> None:
    """Partition 0 never had a deal in training, partition 1 had one in 3 % of its weeks,
    partition 2 likewise but its traffic too; in the traffic of 0 and 1 most rows have a
    deal. Before, deal's profile was one edge at 0 (bins ``< 0`` and ``≥ 0``), every row of
    either fell in the same bin, and neither partition drifted (score 0)."""
    root = tmp_path / "registry"
    train(SPEC, _frame(0, [never, rarely, rarely]), root, backend="local")
    traffic = _frame(1, [mostly, mostly, rarely], rows=64).drop(columns="y")
    # 16 rows of each partition a request: what the sampler keeps of one model per request
    traffic = traffic.iloc[np.argsort(traffic.groupby("pid").cumcount(), kind="stable")]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    settings = Settings(registry=root, monitor_flush_seconds=3600)
    with TestClient(create_app(settings)) as c:
        c.app.state.monitor.sampler.models_per_request = 3  # every model, every batch
        for start in range(0, len(traffic), 48):
            rows = traffic.iloc[start : start + 48].to_dict("records")
            assert c.post("/v1/predict", json={"rows": rows}).status_code == 200
        assert c.app.state.monitor.flush() == 3
        page = c.get("/v1/monitor", params={"limit": 3, "sort": "key"}).json()
    by_key = {p["key"]: p for p in page["partitions"]}
    for key in ("pid=0", "pid=1"):
        assert by_key[key]["flags"] == ["drifted"], json.dumps(page)
        assert by_key[key]["drift_feature"] == "deal"
    assert by_key["pid=2"]["flags"] == []


def test_a_constant_feature_drifts_whichever_way_it_moves() -> None:
    """A feature constant in training (2.0): traffic at 1.0 drifted, traffic at 3.0 did not
    (it shared the bin ``≥ 2.0``); both do now, and traffic at 2.0 does not."""
    stats = prof.numeric_stats(np.full(ROWS, 2.0))
    profile = {"features": {"price": stats}}
    for live, drifts in ((1.0, True), (3.0, True), (2.0, False)):
        counts = prof.bin_counts(stats, [live] * 64)
        assert (drift_scores.drift(profile, {"price": counts})[0] > 0.25) is drifts, (live, counts)
    assert len(stats["edges"]) <= 9


HGB = "sklearn.ensemble.HistGradientBoostingRegressor"  # takes missing values: scores them


def test_a_feature_whose_feed_broke_drifts(tmp_path: Path) -> None:
    """A model that takes missing values scores rows whose ``z`` is null; in partition 0's
    traffic every row's is (the feed broke), in partition 1's none is. Before, a missing
    value was counted in no bin: partition 0's ``z`` had no sampled value, was left out, and
    the partition drifted 0."""
    spec = {**SPEC, "features": ["x", "z"], "candidates": [{"estimator": HGB,
            "params": {"max_iter": [20]}}]}  # fmt: skip
    rng = np.random.default_rng(4)
    parts = []
    for p in range(2):
        x, z = rng.normal(size=ROWS), rng.normal(size=ROWS)
        y = 2 * x + z + rng.normal(scale=0.1, size=ROWS)
        parts.append(pd.DataFrame({"pid": p, "x": x, "z": z, "y": y}))
    root = tmp_path / "registry"
    train(spec, pd.concat(parts, ignore_index=True), root, backend="local")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    settings = Settings(registry=root, monitor_flush_seconds=3600)
    with TestClient(create_app(settings)) as c:
        c.app.state.monitor.sampler.models_per_request = 2  # every model, every batch
        for _ in range(4):  # 16 rows of each partition a request
            rows = [
                {"pid": p, "x": float(rng.normal()), "z": None if p == 0 else float(rng.normal())}
                for p in (0, 1)
                for _ in range(16)
            ]
            assert c.post("/v1/predict", json={"rows": rows}).status_code == 200
        assert c.app.state.monitor.flush() == 2
        page = c.get("/v1/monitor", params={"sort": "key"}).json()
    by_key = {p["key"]: p for p in page["partitions"]}
    assert by_key["pid=0"]["flags"] == ["drifted"], json.dumps(page)
    assert by_key["pid=0"]["drift_feature"] == "z"
    assert by_key["pid=1"]["flags"] == [], json.dumps(page)


def test_missing_values_as_often_as_in_training_do_not_drift() -> None:
    """A fifth of the training rows miss ``z``, and a fifth of the traffic: not flagged
    (under the threshold; a score above 0 comes by chance in ~5 % of samples, as without the
    missing bin: 18 and 21 of 400 seeds); none of the traffic: flagged. Counts of an older
    router, without a missing count, are compared as they were."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=ROWS)
    stats = prof.numeric_stats(np.where(np.arange(ROWS) % 5 == 0, np.nan, z))
    profile = {"rows": ROWS, "features": {"z": stats}}
    same = [None if i % 5 == 0 else float(v) for i, v in enumerate(rng.normal(size=100))]
    limit = Thresholds().drift
    assert drift_scores.drift(profile, {"z": prof.live_counts(stats, same)})[0] < limit
    full = [float(v) for v in rng.normal(size=400)]
    assert drift_scores.drift(profile, {"z": prof.live_counts(stats, full)})[0] >= limit
    older = prof.bin_counts(stats, [v for v in same if v is not None])
    assert drift_scores.drift(profile, {"z": older})[0] < limit


def test_a_missing_text_value_counts_once_as_missing_not_also_as_another_value() -> None:
    """A categorical feature's NaN (pandas' missing text) was binned as "every other value"
    and counted again in the missing bin: a feed of missing values drifted twice over, and
    one of training's rare values lost its bin to them."""
    stats = prof.text_stats(["a", "b", np.nan, None, "a"])
    assert stats == {"top": ["a", "b"], "counts": [2, 1, 0]}
    assert prof.live_counts(stats, ["a", np.nan, np.float64("nan"), None]) == [1, 0, 0, 3]
