"""A request row's ``null`` over real HTTP (uvicorn): a derived feature sent as ``null`` (or, in
V2's binary tensors, NaN) is one not given — computed from the partition's history as a row
that leaves it out gets it, given values kept, an unreachable one refused with the same 422 —
while an ordinary feature's ``null`` stays a missing value. And a boolean feature sent as the
text "true" is told that JSON's true/false are taken."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.pipeline import train
from serving.local import running_server
from serving.settings import Settings

DERIVED = ["y_lag1", "y_lag2", "y_roll_mean_lag1_w3", "t_day_of_week", "x0_change"]
ROW = {"t": "2024-02-10", "x0": 0.5, "x1": -1.0}  # the period right after the last time


@pytest.fixture(scope="module")
def lag_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two daily partitions (40 days to 2024-02-09) of a Ridge over target lags, a rolling
    mean, a calendar part and a feature change, behind uvicorn."""
    root = tmp_path_factory.mktemp("nulls") / "reg"
    df = linear_frame(2, 40)
    df["t"] = list(pd.date_range("2024-01-01", periods=40, freq="D")) * 2
    rolling = [{"lag": 1, "window": 3, "stat": "mean"}]
    spec = spec_dict(lags=[1, 2], rolling=rolling, calendar=["day_of_week"], changes=["x0"])
    train(spec, df, root, backend="local")
    with running_server(Settings(registry=root)) as url:
        yield url


def _one(url: str, key: str, rows: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{url}/v1/partitions/{key}/predict", json={"rows": rows}, timeout=60)


def test_a_null_derived_feature_is_computed_as_a_left_out_one(lag_server: str) -> None:
    """``{"y_lag1": null, …}`` reached the model as NaN: this Ridge refused the row (a model
    that takes missing values scored it with a lag the series never had). It answers as the
    row without those keys now, on one partition's route and the batch's; a value given
    beside a null is kept (the same as giving it and leaving the other out)."""
    nulls = {**ROW, **dict.fromkeys(DERIVED)}
    left = _one(lag_server, "pid=0", [ROW])
    assert left.status_code == 200, left.text
    got = _one(lag_server, "pid=0", [nulls])
    assert got.status_code == 200, got.text
    assert got.json()["predictions"] == left.json()["predictions"]
    kept = _one(lag_server, "pid=0", [{**nulls, "y_lag1": 100.0}])
    want = _one(lag_server, "pid=0", [{**ROW, "y_lag1": 100.0}])
    assert kept.status_code == want.status_code == 200, kept.text
    assert kept.json()["predictions"] == want.json()["predictions"]
    assert kept.json()["predictions"] != left.json()["predictions"]  # 100.0 was read
    batch = [{"pid": p, **nulls} for p in (0, 1)]
    both = httpx.post(f"{lag_server}/v1/predict", json={"rows": batch}, timeout=60)
    plain = [{"pid": p, **ROW} for p in (0, 1)]
    same = httpx.post(f"{lag_server}/v1/predict", json={"rows": plain}, timeout=60)
    assert both.status_code == same.status_code == 200, both.text
    assert both.json()["predictions"] == same.json()["predictions"]


def test_an_unreachable_null_lag_is_the_422_of_a_left_out_one(lag_server: str) -> None:
    """A row three days past the last time needs targets of the 10th and 11th that nobody
    posted (and its change the 11th's x0): left out, a 422 naming the row and each of them;
    sent as null, the same 422 (it was scored from NaNs)."""
    later = {**ROW, "t": "2024-02-12"}
    left = _one(lag_server, "pid=0", [ROW, later])
    nulls = _one(lag_server, "pid=0", [ROW, {**later, **dict.fromkeys(DERIVED)}])
    assert left.status_code == nulls.status_code == 422, nulls.text
    assert nulls.json() == left.json()
    assert [e["loc"][-1] for e in nulls.json()["detail"]] == [
        "x0_change",  # the 11th's x0 is not known either
        "y_lag1",
        "y_lag2",
        "y_roll_mean_lag1_w3",
    ]
    assert "which the model has not seen" in nulls.json()["detail"][1]["msg"]


def test_an_ordinary_features_null_stays_a_missing_value(lag_server: str) -> None:
    """Only derived features are computed: ``x1`` sent as null is not "missing", and is not
    filled from anything (it reaches the model as NaN, which this Ridge refuses)."""
    r = _one(lag_server, "pid=0", [{**ROW, "x1": None}])
    left = _one(lag_server, "pid=0", [{k: v for k, v in ROW.items() if k != "x1"}])
    assert r.status_code == left.status_code == 422, r.text
    assert r.json() != left.json()
    assert "feature 'x1' is missing" in left.text and "is missing" not in r.text, r.text


def test_v2_null_and_nan_derived_features_are_computed_as_left_out(lag_server: str) -> None:
    """V2 JSON infer with a ``null`` lag, and the binary extension with a NaN one (its FP64
    bytes have no null), answer as the tensors without those inputs do."""
    url = f"{lag_server}/v2/models/pid=0/infer"
    base = [{"name": "t", "datatype": "BYTES", "shape": [1], "data": [ROW["t"]]},
            {"name": "x0", "datatype": "FP64", "shape": [1], "data": [ROW["x0"]]},
            {"name": "x1", "datatype": "FP64", "shape": [1], "data": [ROW["x1"]]}]  # fmt: skip
    left = httpx.post(url, json={"inputs": base}, timeout=60)
    assert left.status_code == 200, left.text
    want = left.json()["outputs"][0]["data"]
    nulls = [{"name": n, "datatype": "FP64", "shape": [1], "data": [None]} for n in DERIVED]
    got = httpx.post(url, json={"inputs": [*base, *nulls]}, timeout=60)
    assert got.status_code == 200, got.text
    assert got.json()["outputs"][0]["data"] == want
    raw = np.array([np.nan], dtype="<f8").tobytes()
    binary = [{"name": n, "datatype": "FP64", "shape": [1],
               "parameters": {"binary_data_size": len(raw)}} for n in DERIVED]  # fmt: skip
    header = json.dumps({"inputs": [*base, *binary]}).encode()
    sent = httpx.post(
        url,
        content=header + raw * len(DERIVED),
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=60,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["outputs"][0]["data"] == want


def test_a_boolean_feature_sent_as_text_is_told_json_booleans_are_taken(tmp_path: Path) -> None:
    """``"promo": "true"`` was a 422 "must be a number, not text 'true'", which read as if a
    boolean feature took none. The message now says JSON true/false are accepted — for a
    boolean word only ("cheap" is told nothing more), and true is then scored."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"pid": 0, "t": np.arange(30), "x0": rng.normal(size=30),
                       "promo": rng.integers(0, 2, 30).astype(bool)})  # fmt: skip
    df["y"] = df["x0"] * 2 + df["promo"] * 3
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    with running_server(Settings(registry=tmp_path / "reg")) as url:
        words = _one(url, "pid=0", [{"x0": 1.0, "promo": "true"}, {"x0": "true", "promo": "no"}])
        fine = _one(url, "pid=0", [{"x0": 1.0, "promo": True}])
    assert fine.status_code == 200, fine.text
    assert words.status_code == 422, words.text
    assert [e["msg"] for e in words.json()["detail"]] == [
        "feature 'promo' must be a number, not text 'true' (JSON true/false are accepted)",
        "feature 'x0' must be a number, not text 'true'",
        "feature 'promo' must be a number, not text 'no'",
    ]


def test_a_fallback_row_without_its_lags_is_refused_beside_a_partitions_row(
    lag_server: str,
) -> None:
    """The batch built one input for the rows of models with equal layouts, through the
    first one's schema: a fallback row (no series: it cannot know lags) that left out or
    nulled its lags, sent after a complete row of pid=1, had them computed from pid=1's
    history and was answered 200, while sent alone it was a 422. Refused either way now."""
    lags = ["y_lag1", "y_lag2", "y_roll_mean_lag1_w3"]
    full = {**ROW, **dict.fromkeys(lags, 1.0), "t_day_of_week": 5, "x0_change": 0.1}
    lacking = {k: v for k, v in full.items() if k not in lags}
    for sent in (lacking, {**full, **dict.fromkeys(lags)}):
        rows = [{"pid": 1, **full}, {"pid": 99, **sent}]
        r = httpx.post(f"{lag_server}/v1/predict", json={"rows": rows}, timeout=60)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert [(d["loc"], d["type"]) for d in detail] == [
            (["body", "rows", 1, name], "missing") for name in lags
        ]
        # and why: the fallback that answers pid=99 has no series to compute them from
        assert all(d["msg"].startswith(f"feature '{name}' is missing, and the model")
                   and "no series of its own" in d["msg"]
                   for d, name in zip(detail, lags, strict=True))  # fmt: skip
