"""A DataFrame's target in a pandas nullable dtype (``"boolean"``, ``"string"``, ``"Int64"``)
with a missing cell trains like the same labels in a plain column with that row left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import churn_frame, churn_spec

import manymodels as mm


def frame() -> pd.DataFrame:
    return churn_frame(seed=2, noise=0.4, labels="bool")


SPEC = churn_spec(metric="roc_auc")


@pytest.mark.parametrize(
    ("dtype", "labels"),
    [
        ("boolean", lambda c: c),
        ("string", lambda c: np.where(c, "churn", "stay")),
        ("Int64", lambda c: c.astype(int)),
    ],
)
def test_a_nullable_target_with_a_missing_cell_trains(
    tmp_path: Path, dtype: str, labels: Any
) -> None:
    """Before, for "boolean" and "string": ``TypeError: boolean value of NA is ambiguous``
    from the table's class rates, a traceback and nothing trained."""
    df = frame()
    missing = df.index % 11 == 0
    target = pd.Series(labels(df["churn"].to_numpy()), dtype=dtype).mask(missing)
    mm.train(SPEC, df.assign(label=target), registry=tmp_path / "na", backend="local")
    kept = df[~missing].assign(label=labels(df["churn"].to_numpy()[~missing]))
    mm.train(SPEC, kept, registry=tmp_path / "plain", backend="local")
    with mm.Registry.open(tmp_path / "na") as na, mm.Registry.open(tmp_path / "plain") as plain:
        for user in ("u0", "u1"):
            got, expected = na.load_model({"user": user}), plain.load_model({"user": user})
            assert got.classes == expected.classes
            rows = df[["x1", "x2"]].head(5)
            np.testing.assert_allclose(got.predict_proba(rows), expected.predict_proba(rows))
