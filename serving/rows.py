"""JSON rows in, model input out, checked against the version's ``feature_schema``.

The schema is what training recorded (``manymodels.train.feature_schema``); what it means, and
how the model input is built from checked values, live in ``manymodels.features`` (shared with
batch scoring). A request is checked cell by cell so every problem is reported at once, each
with its row and column, in the same shape FastAPI uses for its own 422 answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError
from manymodels.features import assemble, feature_kinds

MAX_REPORTED = 20  # problems listed in one 422; the rest are counted

_MISSING = object()
_NUMBER_TYPES = (int, float, bool)


class InvalidRows(DataError):
    """Rows that do not fit the model's feature schema; ``errors`` name row and column."""

    def __init__(self, errors: list[dict[str, Any]], total: int | None = None) -> None:
        self.errors = errors[:MAX_REPORTED]
        self.total = len(errors) if total is None else total
        first = self.errors[0]["msg"] if self.errors else "invalid rows"
        super().__init__(first)

    def detail(self) -> list[dict[str, Any]]:
        out = list(self.errors)
        if self.total > len(out):
            out.append(
                {
                    "loc": ["body", "rows"],
                    "msg": f"{self.total - len(out)} more problem(s) not listed",
                    "type": "too_many_errors",
                }
            )
        return out


def problem(row: int, column: str | None, msg: str, kind: str) -> dict[str, Any]:
    loc: list[Any] = ["body", "rows", row]
    if column is not None:
        loc.append(column)
    return {"loc": loc, "msg": msg, "type": kind}


def model_input(
    rows: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    positions: Sequence[int] | None = None,
) -> np.ndarray | pd.DataFrame:
    """The model input for ``rows``; ``positions`` are their indexes in the request (for
    error locations). Raises ``InvalidRows`` naming every bad cell."""
    kinds = feature_kinds(schema)
    features = [name for name, _ in kinds]
    numeric = [is_num for _, is_num in kinds]
    where = positions if positions is not None else range(len(rows))
    errors: list[dict[str, Any]] = []
    n_errors = 0

    values = np.empty((len(rows), len(features)), dtype=np.float64)
    text: dict[int, list[Any]] = {
        j: [None] * len(rows) for j, f in enumerate(features) if not numeric[j]
    }
    for i, row in enumerate(rows):
        for j, name in enumerate(features):
            v = row.get(name, _MISSING)
            if numeric[j]:
                if type(v) in _NUMBER_TYPES:
                    try:
                        values[i, j] = v
                        continue
                    except OverflowError:  # a JSON integer beyond float64 (e.g. 10**400)
                        n_errors += 1
                        if len(errors) < MAX_REPORTED:
                            errors.append(_too_large(where[i], name, v))
                        continue
                if v is None:
                    values[i, j] = math.nan
                    continue
            elif isinstance(v, str) or v is None:
                text[j][i] = v
                continue
            n_errors += 1
            if len(errors) < MAX_REPORTED:
                errors.append(_describe(where[i], name, v, numeric[j]))
    if n_errors:
        raise InvalidRows(errors, n_errors)

    return assemble(schema, values, text)


def _too_large(row: int, column: str, value: int) -> dict[str, Any]:
    return problem(
        row,
        column,
        f"feature '{column}' is too large a number ({_shown(value)}): it does not fit a float",
        "number_too_large",
    )


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's str() digit limit
        return f"an integer of about {value.bit_length() * 30103 // 100000} digits"
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(row: int, column: str, value: Any, numeric: bool) -> dict[str, Any]:
    if value is _MISSING:
        return problem(row, column, f"feature '{column}' is missing", "missing")
    shown = _shown(value)
    if numeric:
        return problem(
            row,
            column,
            f"feature '{column}' must be a number, not {_json_type(value)} {shown}",
            "number_type",
        )
    return problem(
        row, column, f"feature '{column}' must be text, not {_json_type(value)} {shown}", "str_type"
    )


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


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
