"""A feature column of ints and floats mixed in one object column (a DataFrame built by hand
or from JSON rows) is numbers: trained, scored and predicted as the same column of floats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import churn_frame, churn_spec

import manymodels as mm
from manymodels.exceptions import DataError


def frame() -> pd.DataFrame:
    return churn_frame(seed=1, noise=0.3)


def mixed(df: pd.DataFrame) -> pd.DataFrame:
    """``x1`` as JSON rows give it: whole numbers as ints, among floats, in one object column."""
    out = df.copy()
    cells = [int(np.rint(v)) if i % 3 == 0 else float(v) for i, v in enumerate(df["x1"])]
    out["x1"] = pd.Series(cells, dtype=object)
    return out


HGB = "sklearn.ensemble.HistGradientBoostingClassifier"

SPEC = churn_spec()


def test_mixed_ints_and_floats_train_score_and_predict_as_numbers(tmp_path: Path) -> None:
    """Before: ``x1`` was trained as text, one-hot (each number a category, every new value
    unknown), and ``mm.score`` / ``loaded.predict`` of the same frame were refused: "feature
    'x1' must be text, as the model was trained on (found mixed-integer-float values)"."""
    df = mixed(frame())
    as_floats = df.assign(x1=df["x1"].astype(np.float64))
    mm.train(SPEC, df, registry=tmp_path / "mixed", backend="local")
    mm.train(SPEC, as_floats, registry=tmp_path / "floats", backend="local")
    with mm.Registry.open(tmp_path / "mixed") as reg:
        loaded = reg.load_model({"user": "u0"})
        schema = loaded.version.schema
        assert schema.dtypes["x1"] == "float64" and "x1" not in (schema.categorical or [])
        rows = df[df["user"] == "u0"][["x1", "x2"]]
        got = loaded.predict_proba(rows)
    with mm.Registry.open(tmp_path / "floats") as reg:
        expected = reg.load_model({"user": "u0"}).predict_proba(rows.astype(np.float64))
    np.testing.assert_allclose(got, expected)
    scored = mm.score(df, registry=tmp_path / "mixed", probabilities=True)
    reference = mm.score(as_floats, registry=tmp_path / "floats", probabilities=True)
    assert list(scored["prediction"]) == list(reference["prediction"])
    np.testing.assert_allclose(scored["proba-churn"], reference["proba-churn"])


def test_labels_of_ints_and_whole_floats_mixed_are_one_set_of_classes(tmp_path: Path) -> None:
    """Before: labels ``0``, ``1`` and ``1.0`` in one object column were refused before
    training — "metric 'roc_auc' cannot score this table's labels (2 classes: 0, 1.0):
    Unknown label type …; use … 'roc_auc'", the metric it had. Now they are the classes 0
    and 1, as the same labels in an int column."""
    df = frame()
    churn = df["label"] == "churn"
    ints = churn.astype(int)
    cells = [(1 if i % 2 else 1.0) if c else 0 for i, c in enumerate(churn)]
    spec = {**SPEC, "metric": "roc_auc"}
    mm.train(
        spec,
        df.assign(label=pd.Series(cells, dtype=object)),
        registry=tmp_path / "m",
        backend="local",
    )
    mm.train(spec, df.assign(label=ints), registry=tmp_path / "i", backend="local")
    with mm.Registry.open(tmp_path / "m") as mixed, mm.Registry.open(tmp_path / "i") as plain:
        got, expected = mixed.load_model({"user": "u1"}), plain.load_model({"user": "u1"})
        assert got.classes == [0, 1]
        rows = df[["x1", "x2"]].head(5)
        np.testing.assert_allclose(got.predict_proba(rows), expected.predict_proba(rows))


@pytest.mark.parametrize(
    "cells",
    [[True, False, None], [True, 2, 0.5, False]],
    ids=["booleans and nulls", "booleans beside numbers"],
)
def test_booleans_in_an_object_column_train_and_score_as_numbers(
    tmp_path: Path, cells: list[Any]
) -> None:
    """Before: an object feature of ``True``/``False``/``None`` (JSON rows with a null) or of
    booleans beside numbers was one-hot encoded as text, warned of as holding "numbers in
    100% of its rows and text in the rest", and ``mm.score`` of the very frame trained on
    was refused: "feature 'x2' must be text, as the model was trained on (found boolean
    values, dtype object)". Now 1 and 0, as a ``bool`` column and the router read them."""
    df = frame()
    df["x2"] = pd.Series([cells[i % len(cells)] for i in range(len(df))], dtype=object)
    spec = {**SPEC, "candidates": [{"estimator": HGB}]}  # takes the nulls
    summary = mm.train(spec, df, registry=tmp_path / "reg", backend="local")
    assert not summary.run.options.get("warnings"), summary.run.options["warnings"]
    with mm.Registry.open(tmp_path / "reg") as reg:
        schema = reg.load_model({"user": "u0"}).version.schema
    assert schema.dtypes["x2"] == "float64" and "x2" not in (schema.categorical or [])
    scored = mm.score(df, registry=tmp_path / "reg")
    assert scored["prediction"].notna().all()


def test_labels_no_classifier_takes_are_blamed_not_the_metric(tmp_path: Path) -> None:
    """Before: labels ``True`` beside ``0`` (two sources' 0/1 merged) were refused as "metric
    'accuracy' cannot score this table's labels (2 classes: 0, True): Unknown label type …;
    use a classification metric such as 'accuracy' …": the metric it had. Now the labels
    are named as the fault, with the table they are in."""
    df = frame()
    cells = [True if c == "churn" else 0 for c in df["label"]]
    with pytest.raises(DataError) as caught:
        mm.train(SPEC, df.assign(label=pd.Series(cells, dtype=object)), registry=tmp_path / "r")
    said = str(caught.value)
    assert said.startswith(
        "<DataFrame>: target 'label' holds labels no classifier takes (2 classes: 0, True): "
    ), said
    assert "metric" not in said, said


def test_a_column_an_appended_version_learnt_as_categories_stays_text() -> None:
    """An append passes the columns its kept version learnt as categories (a version trained
    before mixed number columns were read as numbers, when such a column was one-hot text):
    reading that column as floats gave version 2 a schema of ``categorical ['x1']`` beside
    dtype float64, which scoring then refused. Such a column stays as the version learnt it."""
    from manymodels.data import checked
    from manymodels.spec import Spec

    spec = Spec.model_validate(SPEC)
    df, cols, _, _ = checked(mixed(frame()), spec, source="<DataFrame>", categories=["x1"])
    assert df["x1"].dtype == object and "x1" in cols.categorical
    df, cols, _, _ = checked(mixed(frame()), spec, source="<DataFrame>")
    assert df["x1"].dtype == np.float64 and "x1" not in cols.categorical
