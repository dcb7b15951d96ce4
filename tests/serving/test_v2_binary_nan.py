"""V2 binary rows of a version that derives features (lags, a calendar part), over real HTTP
(uvicorn): an ordinary feature's NaN is a missing value the model takes, read into the matrix
in one numpy call as a row without NaN is; only a derived feature's NaN (one not given) sends
the rows to ``model_input``, which computes it from the history. Before, any NaN did, cell by
cell, for the same answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

import serving.row_matrix
from manymodels.pipeline import train
from serving.local import running_server
from serving.settings import Settings

DERIVED = ["y_lag1", "y_lag2", "t_day_of_week"]
HGB = {"estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
       "params": {"max_iter": [20], "min_samples_leaf": [3]}}  # fmt: skip  # takes NaN
TIMES = ["2024-02-10", "2024-02-10"]  # the period right after the last time
GIVEN = {"x0": [0.5, -0.3], "x1": [np.nan, 1.2], "y_lag1": [3.0, 2.0], "y_lag2": [1.0, 4.0],
         "t_day_of_week": [5.0, 5.0]}  # fmt: skip  # row 0's x1 missing


@pytest.fixture(scope="module")
def lag_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two daily partitions of a HistGradientBoosting over two target lags and the day of the
    week, behind uvicorn."""
    root = tmp_path_factory.mktemp("binary_nan") / "reg"
    df = linear_frame(2, 40)
    df["t"] = list(pd.date_range("2024-01-01", periods=40, freq="D")) * 2
    train(spec_dict(lags=[1, 2], calendar=["day_of_week"], candidates=[HGB]), df, root,
          backend="local")  # fmt: skip
    with running_server(Settings(registry=root)) as url:
        yield url


@pytest.fixture
def slow_path(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows each request sent through ``model_input`` (the real one, counted)."""
    calls: list[int] = []
    real = serving.row_matrix.model_input

    def counted(rows: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(rows))
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(serving.row_matrix, "model_input", counted)
    return calls


def binary(url: str, columns: dict[str, list[float]]) -> list[float]:
    """Infer with the time as JSON and every other column as FP64 bytes after the header."""
    raw = [np.asarray(v, dtype="<f8").tobytes() for v in columns.values()]
    inputs = [{"name": "t", "datatype": "BYTES", "shape": [2], "data": TIMES}] + [
        {"name": n, "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": len(b)}}
        for n, b in zip(columns, raw, strict=True)
    ]
    header = json.dumps({"inputs": inputs}).encode()
    r = httpx.post(
        f"{url}/v2/models/pid=0/infer",
        content=header + b"".join(raw),
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return list(r.json()["outputs"][0]["data"])


def as_json(url: str, columns: dict[str, list[Any]]) -> list[float]:
    """The same rows as V2 JSON tensors (a NaN sent as ``null``)."""
    inputs = [{"name": "t", "datatype": "BYTES", "shape": [2], "data": TIMES}] + [
        {"name": n, "datatype": "FP64", "shape": [2],
         "data": [None if isinstance(v, float) and np.isnan(v) else v for v in values]}
        for n, values in columns.items()
    ]  # fmt: skip
    r = httpx.post(f"{url}/v2/models/pid=0/infer", json={"inputs": inputs}, timeout=60)
    assert r.status_code == 200, r.text
    return list(r.json()["outputs"][0]["data"])


def test_an_ordinary_features_nan_is_read_in_one_call_with_the_same_answer(
    lag_server: str, slow_path: list[int]
) -> None:
    """Row 0's x1 is NaN, every derived feature given: the binary request's matrix is read
    in one numpy call (it went through ``model_input`` before) and answers as the JSON
    request, whose ``null`` goes through ``model_input``; the NaN reached the model (row 0
    answers otherwise than with x1 = 0)."""
    fast = binary(lag_server, GIVEN)
    assert slow_path == []
    slow = as_json(lag_server, GIVEN)
    assert slow_path == [2]  # the counted path is the one JSON's null takes
    assert fast == slow
    zero = binary(lag_server, {**GIVEN, "x1": [0.0, 1.2]})
    assert zero[1] == fast[1] and zero[0] != fast[0]


def test_a_derived_features_nan_still_takes_the_history_path(
    lag_server: str, slow_path: list[int]
) -> None:
    """A NaN lag beside a NaN x1: the rows go through ``model_input``, which computes the lag
    from the history (as the JSON request that leaves it out) and keeps x1 missing."""
    nan_lag = {**GIVEN, "y_lag1": [np.nan, 2.0]}
    got = binary(lag_server, nan_lag)
    assert slow_path == [2]
    left_out = as_json(lag_server, {k: v for k, v in GIVEN.items() if k != "y_lag1"})
    assert got[0] == left_out[0]  # row 0's lag from the history, as when left out
    assert got[1] == binary(lag_server, GIVEN)[1]  # row 1's own lag kept
