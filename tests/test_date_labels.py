"""Dates as a classifier's classes (a due date, a shift start): one ISO form on every surface."""

from __future__ import annotations

import datetime as dt
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import manymodels as mm
from manymodels.exceptions import SpecError
from serving.app import create_app
from serving.settings import Settings


def dated(zone: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    label = pd.to_datetime(
        np.where(x > 0, "2024-01-01", "2024-02-01T06:30:00"), format="ISO8601"
    ).tz_localize(zone)
    return pd.DataFrame({"user": "u0", "x1": x, "label": label})


SPEC: dict[str, Any] = {
    "name": "d",
    "task": "classification",
    "partition_by": ["user"],
    "target": "label",
    "features": ["x1"],
    "metric": "accuracy",
    "min_rows": 20,
    "seed": 0,
    "validation": {"strategy": "holdout", "size": 0.5},
    "candidates": [
        {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [1.0]}}
    ],
}


def test_date_classes_are_iso_text_in_classes_predict_score_and_the_router(
    tmp_path: Path,
) -> None:
    """Before: ``loaded.classes`` listed '2024-01-01 00:00:00', ``predict`` answered
    ``numpy.datetime64`` ('2024-01-01T00:00:00.000000'), ``score`` Timestamps, and
    ``/v1/predict`` failed with a 500 (no JSON for a datetime). Now each is the ISO text
    the API answers times in."""
    df = dated()
    mm.train(SPEC, df, registry=tmp_path / "r", backend="local")
    iso = ["2024-01-01T00:00:00", "2024-02-01T06:30:00"]
    with mm.Registry.open(tmp_path / "r") as reg:
        loaded = reg.load_model({"user": "u0"})
        assert loaded.classes == iso
        predicted = loaded.predict(df[["x1"]]).tolist()
    expected = np.where(df["x1"] > 0, iso[0], iso[1]).tolist()
    assert set(predicted) == set(iso)
    assert np.mean(np.asarray(predicted) == np.asarray(expected)) > 0.8
    scored = mm.score(df.drop(columns="label"), tmp_path / "r", backend="local")
    assert scored["prediction"].tolist() == predicted
    with warnings.catch_warnings():  # Starlette prefers httpx2; warnings are errors here
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(Settings(registry=tmp_path / "r"))) as client:
        rows = [{"user": "u0", "x1": v} for v in df["x1"].head(5)]
        r = client.post("/v1/predict?probabilities=true", json={"rows": rows})
    assert r.status_code == 200, r.text
    answers = r.json()["predictions"]
    assert [a["prediction"] for a in answers] == predicted[:5]
    assert list(answers[0]["probabilities"]) == iso


def test_zoned_date_classes_keep_their_offset(tmp_path: Path) -> None:
    """A zoned date column's classes keep the zone's offset in the ISO text."""
    mm.train(SPEC, dated("Europe/Paris"), registry=tmp_path / "r", backend="local")
    with mm.Registry.open(tmp_path / "r") as reg:
        assert reg.load_model({"user": "u0"}).classes == [
            "2024-01-01T00:00:00+01:00",
            "2024-02-01T06:30:00+01:00",
        ]


@pytest.mark.parametrize(
    "positive",
    ["2024-01-01", "2024-01-01 00:00:00", "2024-01-01T00:00:00", "toml date 2024-01-01"],
)
def test_a_date_positive_class_is_matched_however_it_is_written(
    tmp_path: Path, positive: str
) -> None:
    """Before: ``[decision] positive = "2024-01-01"`` (or with a space, or the TOML date
    ``2024-01-01``) was refused, only the ISO text the classes are kept as was taken."""
    if positive.startswith("toml"):
        decision = tomllib.loads('[decision]\nthreshold = "f1"\npositive = 2024-01-01\n')
        decision = decision["decision"]  # positive: a datetime.date
    else:
        decision = {"threshold": "f1", "positive": positive}
    mm.train({**SPEC, "decision": decision}, dated(), registry=tmp_path / "r", backend="local")
    with mm.Registry.open(tmp_path / "r") as reg:
        recorded = reg.get_version({"user": "u0"}).feature_schema["decision"]
    assert recorded["positive"] == "2024-01-01T00:00:00"


@pytest.mark.parametrize("positive", ["2024-03-01", "2024-01-01T06:30:00", dt.date(2024, 3, 1)])
def test_a_date_that_is_no_class_is_refused_naming_the_classes(
    tmp_path: Path, positive: object
) -> None:
    with pytest.raises(SpecError, match=r"is not one of the table's classes \('2024-01-01T00"):
        mm.train(
            {**SPEC, "decision": {"threshold": "f1", "positive": positive}},
            dated(),
            registry=tmp_path / "r",
            backend="local",
        )
