"""A missing value that a model takes none of (Ridge: scikit-learn's "Input X contains NaN")
is named by its row and feature wherever rows are scored: ``LoadedModel.predict``, the
router's one-partition and batch routes, and batch scoring."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score
from serving.app import create_app
from serving.settings import Settings

NAMED = "row {row}: no value of feature 'x0'"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cells") / "registry"
    train(spec_dict(features=["x0", "x1"]), linear_frame(2, 30), root, backend="local")
    return root


@pytest.fixture(scope="module")
def client(registry: Path) -> Iterator[Any]:
    with warnings.catch_warnings():  # Starlette prefers httpx2; warnings are errors here
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(Settings(registry=registry))) as c:
        yield c


def test_the_library_names_the_row_and_feature(registry: Path) -> None:
    """Before: "partition 'pid=0' v1 could not score the rows: Input X contains NaN."."""
    with Registry.open(registry) as reg:
        loaded = reg.load_model("pid=0")
    rows = [{"x0": 0.3, "x1": 0.1}, {"x0": 0.2, "x1": 0.1}, {"x0": None, "x1": 0.1}]
    with pytest.raises(DataError) as caught:
        loaded.predict(rows)
    assert "Input X contains NaN" in str(caught.value)
    assert "(data row 3 (counting from 1): no value of feature 'x0'" in str(caught.value)


def test_the_router_names_the_request_row(client: Any) -> None:
    one = [{"x0": 0.3, "x1": 0.1}, {"x0": None, "x1": 0.1}]
    r = client.post("/v1/partitions/pid=0/predict", json={"rows": one})
    assert r.status_code == 422 and NAMED.format(row=1) in r.json()["detail"], r.text
    batch = [{"pid": 1, "x0": 0.3, "x1": 0.1}, {"pid": 0, "x0": 0.3, "x1": 0.1},
             {"pid": 0, "x0": None, "x1": 0.1}]  # fmt: skip
    r = client.post("/v1/predict", json={"rows": batch})
    assert r.status_code == 422 and NAMED.format(row=2) in r.json()["detail"], r.text


def test_batch_scoring_names_the_feature(registry: Path) -> None:
    df = pd.DataFrame({"pid": [0, 0, 1], "x0": [0.3, np.nan, 0.1], "x1": 0.1})
    with pytest.raises(DataError, match="no value of feature 'x0' in 1 of them"):
        score(df, registry, backend="local")
