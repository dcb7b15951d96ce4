"""A key without a model of its own, scored through the router by the fallback of a spec with
target lags: the fallback has no series to read a lag from, so a row that gives its time and
leaves the lag out is refused, and the refusal says why (as ``manymodels score`` says it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from routerkit import open_client

from manymodels.pipeline import train
from serving.settings import Settings

pytestmark = pytest.mark.slow  # a training run and a router: ~11 s on a loaded machine

ROW = {"t": "2024-02-10", "x0": 0.5, "x1": -1.0}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    df = linear_frame(3, 40)
    df["t"] = list(pd.date_range("2024-01-01", periods=40, freq="D")) * 3
    registry: Path = tmp_path_factory.mktemp("fallback_lags") / "reg"
    spec = spec_dict(calendar=["day_of_week"], lags=[1], fallback={"enabled": True})
    train(spec, df, registry, backend="local")
    with open_client(Settings(registry=registry)) as c:
        yield c


def _why(detail: list[dict[str, Any]]) -> dict[str, str]:
    return {str(d["loc"][-1]): d["msg"] for d in detail}


def test_a_fallback_row_without_its_lag_is_told_the_fallback_has_no_series(client: Any) -> None:
    """It was "feature 'y_lag1' is missing" alone: the row gave its time, as a partition's
    row may, and nothing said that its key had no model and the fallback cannot compute it."""
    r = client.post("/v1/partitions/pid=99/predict", json={"rows": [ROW]})
    assert r.status_code == 422, r.text
    why = _why(r.json()["detail"])
    assert list(why) == ["y_lag1"]
    assert "has no series of its own" in why["y_lag1"] and "fallback" in why["y_lag1"]
    batch = client.post("/v1/predict", json={"rows": [{"pid": 0, **ROW}, {"pid": 99, **ROW}]})
    assert batch.status_code == 422, batch.text
    detail = batch.json()["detail"]
    assert [d["loc"][2] for d in detail] == [1]  # the fallback's row only: pid=0 computes its own
    assert "has no series of its own" in detail[0]["msg"]


def test_a_fallback_row_that_gives_its_lag_is_answered(client: Any) -> None:
    r = client.post("/v1/partitions/pid=99/predict", json={"rows": [{**ROW, "y_lag1": 2.0}]})
    assert r.status_code == 200, r.text
    assert r.json()["fallback"] is True


def test_v2_says_so_too(client: Any) -> None:
    """V2 said "missing input(s) y_lag1: … the model also takes t", the time it was sent."""
    inputs = [
        {"name": "x0", "datatype": "FP64", "shape": [1], "data": [0.5]},
        {"name": "x1", "datatype": "FP64", "shape": [1], "data": [-1.0]},
        {"name": "t", "datatype": "BYTES", "shape": [1], "data": ["2024-02-10"]},
    ]
    r = client.post("/v2/models/pid=99/infer", json={"inputs": inputs})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert "missing input(s) y_lag1" in error and "no series of its own" in error
    own = client.post("/v2/models/pid=0/infer", json={"inputs": inputs})
    assert own.status_code == 200, own.text  # a partition's own model computes it


def test_v2_refuses_levels_it_cannot_answer(client: Any) -> None:
    """``"parameters": {"levels": "80"}`` (as /v1's ``?levels=80``) was answered 200 with no
    interval in it and nothing said: a client read a prediction as if it had its band."""
    inputs = [
        {"name": "x0", "datatype": "FP64", "shape": [1], "data": [0.5]},
        {"name": "x1", "datatype": "FP64", "shape": [1], "data": [-1.0]},
        {"name": "t", "datatype": "BYTES", "shape": [1], "data": ["2024-02-10"]},
    ]
    for levels in ("80", [80, 95]):
        body = {"inputs": inputs, "parameters": {"levels": levels}}
        r = client.post("/v2/models/pid=0/infer", json=body)
        assert r.status_code == 400, r.text
        assert "parameter 'levels'" in r.json()["error"] and "/v1/" in r.json()["error"]


def test_v2_levels_null_asks_for_none(client: Any) -> None:
    """``"levels": null`` asks for no interval, as ``"threshold": null`` is no threshold: it
    was refused as if intervals were asked, a client that always sends the key got a 400."""
    inputs = [
        {"name": "x0", "datatype": "FP64", "shape": [1], "data": [0.5]},
        {"name": "x1", "datatype": "FP64", "shape": [1], "data": [-1.0]},
        {"name": "t", "datatype": "BYTES", "shape": [1], "data": ["2024-02-10"]},
    ]
    plain = client.post("/v2/models/pid=0/infer", json={"inputs": inputs})
    body = {"inputs": inputs, "parameters": {"levels": None, "threshold": None}}
    r = client.post("/v2/models/pid=0/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == plain.json()["outputs"]
