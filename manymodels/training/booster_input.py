"""A global LightGBM regressor's predictions without pandas: the float matrix LightGBM would
build from the frame, built directly.

``GlobalModel.predict`` hands its estimator a frame whose key columns are pandas categories;
LightGBM turns that frame into a float64 matrix (each category its code, an unknown one NaN)
and checks it through scikit-learn first. For the few rows one partition asks at a time —
a request to the router, a forecast step, a validation fold — that conversion was ~1.3 ms a
call where the trees took ~20 µs. This module builds the same matrix (numeric features as
they are, each key value its code in the model's category list) and calls the booster with
it, so the predictions are the same bits; anything it cannot vouch for goes the frame's way.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

PREDICT_PARAMS = ("pred_", "predict_", "num_iteration_predict")
"""LightGBM parameters that change what ``predict`` computes: a model given any of them keeps
scikit-learn's own ``predict``, which passes them on."""

SMALL = 4096
"""Rows predicted on one thread: below this, starting threads costs more than the trees."""


class _Codes:
    """One fitted model's key columns as code tables (``{category: code}`` each)."""

    def __init__(self, tables: list[dict[Any, int]]) -> None:
        self.tables = tables


_CACHE: weakref.WeakKeyDictionary[Any, _Codes | None] = weakref.WeakKeyDictionary()
"""Per ``GlobalModel``, its code tables (``None``: not a model this path serves). Kept beside
the model, never on it: the model is what the registry stores."""


def booster_predict(model: Any, X: Any, keys: Sequence[Sequence[Any]]) -> np.ndarray | None:
    """``model.estimator.predict(model.frame(X, keys))``, the same values, for a LightGBM
    regressor over numeric features; ``None`` when the frame must be built (a classifier,
    categorical features, a prediction parameter, a key value it cannot look up)."""
    codes = _codes_of(model)
    if codes is None:
        return None
    if isinstance(X, pd.DataFrame):
        try:
            X = X.loc[:, list(model.features)].to_numpy(dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(model.features):
        return None
    n, width = X.shape
    M = np.empty((n, width + len(codes.tables)), dtype=np.float64)
    M[:, :width] = X
    for j, (table, values) in enumerate(zip(codes.tables, keys, strict=True)):
        column = _coded(table, values)
        if column is None or (len(column) != 1 and len(column) != n):
            return None
        M[:, width + j] = column
    threads = {"num_threads": 1} if n < SMALL else {}
    return np.asarray(model.estimator.booster_.predict(M, **threads))


def _coded(table: dict[Any, int], values: Sequence[Any]) -> np.ndarray | None:
    """Each key value's code as a float (NaN for one the model never saw, as LightGBM reads
    pandas' ``-1``); ``None`` for a value a dict cannot match as pandas would (a NaN, or one
    that cannot be hashed)."""
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if not isinstance(value, Hashable) or (isinstance(value, float) and math.isnan(value)):
            return None
        out[i] = table.get(value, math.nan)
    return out


def _codes_of(model: Any) -> _Codes | None:
    try:
        return _CACHE[model]
    except KeyError:
        found = _CACHE[model] = _build(model)
        return found
    except TypeError:  # not weakly referable: no cache, no shortcut
        return None


def _build(model: Any) -> _Codes | None:
    """The code tables, if ``model`` is a fitted LightGBM regressor over numeric features
    whose booster knows the key columns by the same category lists ``GlobalModel.fit`` set."""
    estimator = model.estimator
    kind = type(estimator)
    if kind.__name__ != "LGBMRegressor" or not kind.__module__.startswith("lightgbm"):
        return None
    if model.categorical or not model.keys:
        return None
    booster = getattr(estimator, "booster_", None) if _fitted(estimator) else None
    if booster is None:
        return None
    params = estimator.get_params()
    if any(str(name).startswith(PREDICT_PARAMS) for name in params):
        return None
    categories = getattr(model, "categories_", {})
    lists = [list(categories.get(name, [])) for name in model.keys]
    if booster.pandas_categorical != lists:  # not the frame's categories: build the frame
        return None
    if booster.num_feature() != len(model.features) + len(model.keys):
        return None
    tables: list[dict[Any, int]] = []
    for values in lists:
        table: dict[Any, int] = {}
        for code, value in enumerate(values):
            if not isinstance(value, Hashable) or value in table:
                return None  # two categories equal as dict keys: pandas tells them apart
            table[value] = code
        tables.append(table)
    return _Codes(tables)


def _fitted(estimator: Any) -> bool:
    try:
        return bool(estimator.__sklearn_is_fitted__())
    except Exception:
        return False
