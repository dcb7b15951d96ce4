"""Answers out: predictions and probabilities as JSON values. (Rows in — the model input
checked against the version's feature schema — is ``manymodels.inputs``, shared with
``LoadedModel.predict``; re-exported here for the router's modules.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from manymodels.exceptions import InvalidRows
from manymodels.inputs import from_rows as model_input
from manymodels.inputs import problem

__all__ = ["InvalidRows", "model_input", "probabilities", "problem", "to_json_list"]


def to_json_list(values: Any) -> list[Any]:
    """Predictions as plain JSON values; NaN and infinities become ``null``."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return [None if not math.isfinite(x) else x for x in arr.tolist()]
    return list(arr.tolist())


def probabilities(model: Any, X: Any) -> list[dict[str, float]] | None:
    """``[{class: p}]`` per row when the model has ``predict_proba``, else ``None``."""
    if not hasattr(model, "predict_proba"):
        return None
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    labels = [str(c) for c in np.asarray(model.classes_).tolist()]
    return [dict(zip(labels, row, strict=True)) for row in proba.tolist()]
