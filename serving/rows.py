"""Answers out: predictions and probabilities as JSON values. (Rows in — the model input
checked against the version's feature schema — is ``manymodels.inputs``, shared with
``LoadedModel.predict``; re-exported here for the router's modules.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels.classes import over_table_classes
from manymodels.exceptions import InvalidRows
from manymodels.feature_schema import FeatureSchema
from manymodels.inputs import from_rows as model_input
from manymodels.inputs import problem

__all__ = [
    "InvalidRows",
    "finite_answers",
    "model_input",
    "probabilities",
    "problem",
    "to_json_list",
]
NOT_FINITE = (
    "the model's prediction for this row is not a finite number: a feature value is beyond "
    "what it can compute with"
)


def to_json_list(values: Any) -> list[Any]:
    """Predictions as plain JSON values; NaN and infinities become ``null``, dates ISO text
    (a version whose model answers ``datetime64`` classes, trained before classes of dates
    were text, or imported: its answers failed with a 500, no JSON for a datetime)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return [None if pd.isna(x) else pd.Timestamp(x).isoformat() for x in arr.reshape(-1)]
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return [None if not math.isfinite(x) else x for x in arr.tolist()]
    return list(arr.tolist())


def finite_answers(values: Sequence[Any], positions: Sequence[int] | None = None) -> None:
    """Raises ``InvalidRows`` naming the rows (their ``positions`` in the request) whose
    prediction is ``null``: a finite input such as ``1e308`` overflowed the model's arithmetic.
    Answering ``null`` with a 200 hid it, and ``LoadedModel.predict`` refuses such rows."""
    if all(v is not None for v in values):
        return
    where = positions if positions is not None else range(len(values))
    bad = [where[i] for i, v in enumerate(values) if v is None]
    raise InvalidRows([problem(row, None, NOT_FINITE, "prediction_not_finite") for row in bad])


def probabilities(
    model: Any, X: Any, schema: FeatureSchema | None = None
) -> list[dict[str, float]] | None:
    """``[{class: p}]`` per row when the model has ``predict_proba``, else ``None``: every
    class of the version's table (``classes.over_table_classes``), 0 for one its partition
    never held."""
    if not hasattr(model, "predict_proba"):
        return None
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    table = schema.classes if schema is not None else None
    classes, proba = over_table_classes(proba, model.classes_, table)
    labels = [str(c) for c in classes]
    return [dict(zip(labels, row, strict=True)) for row in proba.tolist()]
