"""Drift is recorded on every database whatever a feature is called.

A partition's drift row names its most drifted feature in a column of 256 characters. SQLite
ignores a column's length; PostgreSQL refuses a longer value ("value too long for type
character varying(256)"), and the router's monitor flush writes every partition's sample in one
transaction: one partition whose most drifted feature had a longer name (a column name from a
wide CSV, a generated one) lost the drift of every partition in each flush, for as long as that
partition was scored. The name is now cut to the column's length, ending in "…". Real uvicorn
over SQLite and a real PostgreSQL server.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import manymodels as mm
from manymodels.monitoring.store import drift_rows
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

LONG = "sensor_" + "x" * 293  # 300 characters


@pytest.mark.slow
def test_drift_of_a_feature_with_a_long_name_is_recorded(db_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "pid": np.repeat([1, 2], 60),
            LONG: rng.normal(size=120),
            "short": rng.normal(size=120),
        }
    )
    frame["y"] = frame[LONG] * 2 + frame["short"] + rng.normal(scale=0.1, size=120)
    spec = {
        "name": "long-names",
        "partition_by": ["pid"],
        "target": "y",
        "features": [LONG, "short"],
        "validation": {"strategy": "holdout", "size": 0.25},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}],
    }
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        mm.train(spec, frame, registry=reg, backend="local")
    settings = Settings(registry=root, registry_db=db_url, monitor_flush_seconds=0.2)
    normal = [float(v) for v in rng.normal(size=16)]  # as in training
    drifted = [{LONG: 50.0 + i, "short": v} for i, v in enumerate(normal)]  # LONG far off
    usual = [{LONG: v, "short": v} for v in normal]
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(6):  # > MIN_DRIFT_ROWS sampled rows each
            for pid, rows in ((1, drifted), (2, usual)):
                r = http.post(f"/v1/partitions/pid={pid}/predict", json={"rows": rows})
                assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        with Registry(root, db_url=db_url) as reg:
            while not _scored(found := drift_rows(reg.store.engine)):
                assert time.monotonic() < deadline, f"drift never recorded: {sorted(found)}"
                time.sleep(0.2)
    shown = LONG[:255] + "…"  # the column's 256 characters, on every database
    assert found["pid=1"].feature == shown and found["pid=1"].score > 0.2, found["pid=1"]
    assert found["pid=2"].rows >= 50, found["pid=2"]


def _scored(found: dict[str, Any]) -> bool:
    """Both partitions' rows there, each with a score (past ``MIN_DRIFT_ROWS``): a flush may
    come between requests."""
    return set(found) == {"pid=1", "pid=2"} and all(r.score is not None for r in found.values())
