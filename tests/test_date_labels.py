"""Dates as a classifier's classes (a due date, a shift start): one ISO form on every surface."""

from __future__ import annotations

import datetime as dt
import tomllib
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import churn_spec, make_run, new_version, open_client
from sklearn.linear_model import LogisticRegression

import manymodels as mm
from manymodels.artifacts import serialize
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


SPEC = churn_spec(name="d", features=["x1"], validation={"strategy": "holdout", "size": 0.5})


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
    with open_client(Settings(registry=tmp_path / "r")) as client:
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


def test_a_parquet_file_of_date32_labels_trains_on_iso_date_classes(tmp_path: Path) -> None:
    """A Parquet date column (``date32``, a due date from a database) reaches pandas as
    ``datetime.date`` objects. Before: refused as "target 'label' holds labels no classifier
    takes (…): Unknown label type: unknown" where the same dates as ``datetime64`` (a CSV's)
    trained. Now its classes are the ISO text those are, and score answers them."""
    df = dated()
    df["label"] = df["label"].dt.normalize().dt.date  # 2024-01-01, 2024-02-01
    df.to_parquet(tmp_path / "due.parquet")
    assert pd.read_parquet(tmp_path / "due.parquet")["label"].dtype == object
    decision = {"threshold": "f1", "positive": dt.date(2024, 1, 1)}
    mm.train({**SPEC, "decision": decision}, tmp_path / "due.parquet", registry=tmp_path / "r",
             backend="local")  # fmt: skip
    iso = ["2024-01-01T00:00:00", "2024-02-01T00:00:00"]
    with mm.Registry.open(tmp_path / "r") as reg:
        assert reg.load_model({"user": "u0"}).classes == iso
    scored = mm.score(df.drop(columns="label"), tmp_path / "r", backend="local")
    assert set(scored["prediction"]) == set(iso)


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


def test_a_version_from_before_dates_were_text_answers_iso_text(tmp_path: Path) -> None:
    """A version trained before date classes were ISO text: its model's classes are
    ``datetime64`` and its schema lists ``'2024-01-01 00:00:00'`` (``str(datetime)``, its
    ``[decision]`` positive too). Its probabilities were keyed by nanosecond counts
    (``'1704067200000000000'``), or by the spaced text, beside a retrained version's ISO
    keys. Now, turned once as it loads, every surface answers ISO text for it."""
    root = tmp_path / "r"
    df = dated()
    decided = {"threshold": "f1", "positive": "2024-01-01"}
    mm.train({**SPEC, "decision": decided}, df, registry=root, backend="local")
    old = LogisticRegression().fit(df[["x1"]].to_numpy(), df["label"].to_numpy())
    assert old.classes_.dtype.kind == "M"  # as fitted before dates were text classes
    with mm.Registry(root) as reg:
        schema = dict(reg.get_version({"user": "u0"}).feature_schema)
        schema["classes"] = ["2024-01-01 00:00:00", "2024-02-01 06:30:00"]
        schema["decision"] = {**schema["decision"], "positive": "2024-01-01 00:00:00"}
        sha, size = reg.artifacts.put(serialize(old))
        reg.store.create_run(make_run("old", n_partitions=1))
        recorded = replace(
            new_version("user=u1", sha, size, key_values={"user": "u1"}),
            feature_schema=schema,
            metric="accuracy",
        )
        reg.store.record("old", [recorded], [], libraries={})
    iso = ["2024-01-01T00:00:00", "2024-02-01T06:30:00"]
    rows = df.assign(user="u1").drop(columns="label").head(6)
    p_first = old.predict_proba(rows[["x1"]].to_numpy())[:, 0]
    threshold = schema["decision"]["threshold"]
    labels = np.where(p_first >= threshold, iso[0], iso[1]).tolist()
    with mm.Registry.open(root) as reg:
        loaded = reg.load_model({"user": "u1"})
        assert loaded.classes == iso
        assert set(loaded.predict(rows[["x1"]]).tolist()) <= set(iso)
    scored = mm.score(rows, root, backend="local", probabilities=True)
    assert [c for c in scored.columns if c.startswith("proba-")] == [f"proba-{c}" for c in iso]
    assert scored["decision_label"].tolist() == labels
    with warnings.catch_warnings():  # Starlette prefers httpx2; warnings are errors here
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(Settings(registry=root))) as client:
        body = {"rows": rows[["x1"]].to_dict("records")}
        r = client.post("/v1/partitions/user=u1/predict?probabilities=true", json=body)
    assert r.status_code == 200, r.text
    assert [list(p) for p in r.json()["probabilities"]] == [iso] * len(rows)
    assert r.json()["labels"] == labels
