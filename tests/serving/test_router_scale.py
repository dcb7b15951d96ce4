"""Thousands of partitions: batch scoring across all of them through a small cache, and
paging through them."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import numpy as np
import pytest

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic
from serving.local import running_server
from serving.settings import Settings

N = 2000
FEATURES = ["x0", "x1", "x2"]


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many") / "registry"
    spec = {
        "name": "synthetic",
        "partition_by": ["pid"],
        "target": "y",
        "features": FEATURES,
        "validation": {"strategy": "holdout", "size": 0.25},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}],
    }
    with Registry(root) as reg:
        summary = train(spec, synthetic(N, 24, n_features=3, seed=1), reg, backend="local")
    assert summary.run.n_trained == N
    return root


@pytest.mark.slow
def test_batch_across_thousands_of_partitions(many: Path) -> None:
    rng = random.Random(0)
    rows = [
        {"pid": pid, **{f: rng.uniform(-2, 2) for f in FEATURES}}
        for pid in range(N)
        for _ in range(3)
    ]
    rng.shuffle(rows)
    settings = Settings(registry=many, cache_size=300)
    with running_server(settings) as base:
        r = httpx.post(f"{base}/v1/predict", json={"rows": rows}, timeout=60)
        assert r.status_code == 200, r.text[:500]
        answers = r.json()["predictions"]
        assert len(answers) == len(rows)
        with Registry.open(many) as reg:
            for i in rng.sample(range(len(rows)), 25):
                key = f"pid={rows[i]['pid']}"
                assert answers[i]["partition"] == key and answers[i]["fallback"] is False
                X = np.array([[rows[i][f] for f in FEATURES]])
                truth = reg.load_model(key).model.predict(X)[0]
                assert answers[i]["prediction"] == pytest.approx(truth)
        text = httpx.get(f"{base}/metrics").text
        assert "manymodels_models_loaded 300.0" in text
        assert f"manymodels_model_cache_evictions_total {N - 300}.0" in text

        seen, after = 0, None
        while True:
            params = {"limit": 1000} | ({"after": after} if after else {})
            page = httpx.get(f"{base}/v1/partitions", params=params).json()
            seen += len(page["partitions"])
            after = page["next_after"]
            if after is None:
                break
        assert seen == N + 1  # and the fallback
