"""A global LightGBM model's predictions without pandas: the float matrix LightGBM would
build from the frame, built directly.

``GlobalModel.predict`` hands its estimator a frame whose key columns are pandas categories;
LightGBM turns that frame into a float64 matrix (each category its code, an unknown one NaN).
For the few rows one partition asks at a time — a request to the router, a forecast step, a
validation fold — building the frame and converting it back cost ~1.3 ms a call where the
whole prediction from a matrix takes ~25 µs. This module builds the same matrix (numeric
features as they are, each categorical feature's and key's value its code in the model's
category list) and calls the booster with it, so the predictions are the same bits; anything
it cannot vouch for goes the frame's way. One known difference, in this path's favour: keys
of one call that mix integers past 2**53 with a None or a float became floats in the frame,
and could take another key's code; here each keeps its own.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

PREDICT_PARAMS = ("pred_", "predict_", "num_iteration_predict")
"""LightGBM parameters that may change what ``predict`` computes: a model given any of them
keeps scikit-learn's own ``predict``, which passes them on."""

THREAD_PARAMS = ("num_threads", "num_thread", "nthread", "nthreads")

SMALL = 4096
"""Rows predicted on one thread: below this, starting threads costs more than the trees."""


@dataclass(frozen=True)
class _Tables:
    """A model's category columns as code tables (``{category: code}`` each): its categorical
    features by their index among the features, and its key columns in order."""

    features: dict[int, dict[Any, int]]
    keys: list[dict[Any, int]]


@dataclass(frozen=True)
class _Codes:
    """One fitted model's code tables, and what they were built from: a refit replaces both,
    and the tables with them."""

    booster: Any
    categories: Any
    tables: _Tables | None  # ``None``: not a model this path serves


_CACHE: weakref.WeakKeyDictionary[Any, _Codes] = weakref.WeakKeyDictionary()
"""Per ``GlobalModel``, its code tables. Kept beside the model, never on it: the model is what
the registry stores."""


def booster_predict(model: Any, X: Any, keys: Sequence[Sequence[Any]]) -> np.ndarray | None:
    """``model.estimator.predict(model.frame(X, keys))``, the same values, for a LightGBM
    regressor or classifier; ``None`` when the frame must be built (a prediction parameter, a
    custom objective, a key or category value it cannot look up, categorical features given
    as a matrix)."""
    raw = _raw(model, X, keys)
    if raw is None or not _is(model.estimator, "LGBMClassifier"):
        return raw
    # as ``LGBMClassifier.predict``: the class of the largest probability
    return np.asarray(model.estimator.classes_)[np.argmax(_proba(model.estimator, raw), axis=1)]


def booster_proba(model: Any, X: Any, keys: Sequence[Sequence[Any]]) -> np.ndarray | None:
    """``model.estimator.predict_proba(model.frame(X, keys))``, the same values, for a
    LightGBM classifier; ``None`` where ``booster_predict`` would be."""
    if not _is(model.estimator, "LGBMClassifier"):
        return None
    raw = _raw(model, X, keys)
    return None if raw is None else _proba(model.estimator, raw)


def _proba(estimator: Any, raw: np.ndarray) -> np.ndarray:
    """As ``LGBMClassifier.predict_proba`` makes the booster's output: two classes' columns
    from the one probability the booster gives, more classes' as they are."""
    if len(estimator.classes_) > 2:
        return raw
    return np.vstack((1.0 - raw, raw)).transpose()


def _raw(model: Any, X: Any, keys: Sequence[Sequence[Any]]) -> np.ndarray | None:
    """The booster's output for ``X`` and ``keys`` from the frame's matrix, built directly."""
    tables = _tables_of(model)
    if tables is None or len(keys) != len(tables.keys):
        return None
    M = _features(model, X, tables)
    if M is None:
        return None  # the frame's way says what is wrong with it
    n, width = len(M), len(model.features)
    for j, (table, values) in enumerate(zip(tables.keys, keys, strict=True)):
        column = _coded(table, values)
        if column is None or (len(column) != 1 and len(column) != n):
            return None
        M[:, width + j] = column
    estimator = model.estimator
    return np.asarray(estimator.booster_.predict(M, **threads(estimator, n)))


def _features(model: Any, X: Any, tables: _Tables) -> np.ndarray | None:
    """The matrix's feature columns filled from ``X`` (its key columns left to fill), or
    ``None``: no rows, columns missing or of types LightGBM refuses, a category value that
    cannot be looked up, categories given as numbers in a matrix."""
    width, coded = len(model.features), tables.features
    if not isinstance(X, pd.DataFrame):
        if coded:
            return None  # categories as numbers in a matrix: left to the frame
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if X.ndim != 2 or X.shape[1] != width or not len(X):
            return None
        M = np.empty((len(X), width + len(tables.keys)), dtype=np.float64)
        M[:, :width] = X
        return M
    if not len(X):
        return None
    M = np.empty((len(X), width + len(tables.keys)), dtype=np.float64)
    for j, name in enumerate(model.features):  # column by column: no frame of them built
        column = X.get(name)
        if not isinstance(column, pd.Series):
            return None  # missing or duplicated
        if j in coded:  # the values the frame would make categories of
            codes = _coded(coded[j], column.tolist(), nan_missing=True)
            if codes is None:
                return None
            M[:, j] = codes
        elif _plain_number(column):  # as LightGBM takes a frame's numbers
            M[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            return None
    return M


def threads(estimator: Any, n: int) -> dict[str, int]:
    """The booster's ``num_threads`` for ``n`` rows: one below ``SMALL``; above it the thread
    count the estimator was given (a ``num_threads`` alias, else ``n_jobs``: a run's tasks
    set 1, one CPU each), or LightGBM's own default when that is not a positive number."""
    if n < SMALL:
        return {"num_threads": 1}
    params = estimator.get_params()
    given = next((params[k] for k in THREAD_PARAMS if params.get(k) is not None), None)
    if given is None:
        given = params.get("n_jobs")
    return {"num_threads": given} if isinstance(given, int) and given > 0 else {}


LOOKED_UP = (str, int, float, np.integer, np.floating, np.bool_)
"""Values a code table answers for as pandas' ``get_indexer`` would (their hash and ``==``
agree, and never raise); any other goes the frame's way."""

_LOOKUP, _FLOAT, _MISSING, _REFUSED = range(4)
_KINDS: dict[type, int] = {type(None): _MISSING, type(pd.NA): _MISSING}
"""What ``_coded`` does with a value by its type, learnt once per type: look it up, look it up
unless it is NaN, take it as missing (``None`` and ``pd.NA`` are never categories), or refuse
the call (numpy's time spans are integers that hash otherwise than they equal)."""
_PLAIN: set[type] = set()
"""The types learnt to be looked up as they are (``_LOOKUP``): text, integers, booleans."""


def _kind(kind: type) -> int:
    known = _KINDS.get(kind)
    if known is None:
        if not issubclass(kind, LOOKED_UP) or issubclass(kind, np.timedelta64):
            known = _REFUSED
        else:
            known = _FLOAT if issubclass(kind, float | np.floating) else _LOOKUP
        _KINDS[kind] = known
        if known == _LOOKUP:
            _PLAIN.add(kind)
    return known


def _coded(
    table: dict[Any, int], values: Sequence[Any], *, nan_missing: bool = False
) -> np.ndarray | None:
    """Each value's code as a float (NaN for one the model never saw, as LightGBM reads
    pandas' ``-1``); ``None`` for a value of another type than ``LOOKED_UP`` (or ``None``), or
    a float NaN unless ``nan_missing`` (a missing key is left to the frame rather than
    reasoned about here; a categorical feature's missing value is one: pandas never makes NaN
    a category, so the frame's ``-1``). ``None`` and ``pd.NA`` are never categories either.

    The values' types are judged once each and the rows looked up by ``dict.get`` mapped in
    C: a loop judging and looking up row by row took ~1-2 % of a forecasting run with a
    global candidate (every validation row's key codes, ``global_fit.predict_into``)."""
    n = len(values)
    types = set(map(type, values))
    if types <= _PLAIN:  # keys: text or integers, no NaN (the common case, and a request's)
        return np.fromiter(map(table.get, values, repeat(math.nan)), np.float64, n)
    kinds = set(map(_kind, types))
    if _REFUSED in kinds:
        return None
    if _MISSING not in kinds and _FLOAT not in kinds:  # types seen for the first time
        return np.fromiter(map(table.get, values, repeat(math.nan)), np.float64, n)
    cells = np.empty(n, dtype=object)  # the values themselves (numpy's scalars kept)
    cells[:] = values if isinstance(values, np.ndarray) and values.dtype == object else list(values)
    absent = pd.isna(cells)  # after the types' check: None, pd.NA or a float NaN alone
    if not nan_missing and _FLOAT in kinds and absent.any() and _nan_among(cells[absent]):
        return None
    out = np.full(n, math.nan)
    present = cells[~absent]
    out[~absent] = np.fromiter(map(table.get, present, repeat(math.nan)), np.float64, len(present))
    return out


def _nan_among(absent: np.ndarray) -> bool:
    """Whether missing values hold a float NaN (the others are ``None`` and ``pd.NA``)."""
    return any(v is not None and v is not pd.NA for v in absent)


def _tables_of(model: Any) -> _Tables | None:
    """``model``'s code tables, built once per fit (``None``: not a model this path serves)."""
    booster = getattr(model.estimator, "booster_", None) if _fitted(model.estimator) else None
    categories = getattr(model, "categories_", None)
    try:
        codes = _CACHE.get(model)
    except TypeError:  # not weakly referable: no cache, no shortcut
        return None
    if codes is None or codes.booster is not booster or codes.categories is not categories:
        codes = _CACHE[model] = _Codes(booster, categories, _build(model, booster))
    return codes.tables


def _build(model: Any, booster: Any) -> _Tables | None:
    """The code tables, if ``model`` is a fitted LightGBM regressor or classifier whose booster
    knows its category columns (categorical features in feature order, then the keys: the
    frame's column order) by the category lists ``GlobalModel.fit`` set."""
    estimator = model.estimator
    if not (_is(estimator, "LGBMRegressor") or _is(estimator, "LGBMClassifier")):
        return None
    features = list(model.features)
    if not model.keys or booster is None or not set(model.categorical) <= set(features):
        return None
    params = estimator.get_params()
    if any(str(name).startswith(PREDICT_PARAMS) for name in params):
        return None
    if callable(params.get("objective")):  # the wrapper returns raw scores then, and warns
        return None
    categories = getattr(model, "categories_", {})
    columns = [name for name in features if name in model.categorical] + list(model.keys)
    lists = [list(categories.get(name, [])) for name in columns]
    if booster.pandas_categorical != lists:  # not the frame's categories: build the frame
        return None
    if booster.num_feature() != len(features) + len(model.keys):
        return None
    tables: list[dict[Any, int]] = []
    for values in lists:
        table: dict[Any, int] = {}
        for code, value in enumerate(values):
            if not isinstance(value, Hashable) or value in table:
                return None  # pandas keeps categories distinct: a defence, not a known case
            table[value] = code
        tables.append(table)
    indexes = [j for j, name in enumerate(features) if name in model.categorical]
    features_coded = dict(zip(indexes, tables[: len(indexes)], strict=True))
    return _Tables(features_coded, tables[len(indexes) :])


def _is(estimator: Any, name: str) -> bool:
    """Whether ``estimator`` is exactly LightGBM's ``name`` (a subclass may predict otherwise)."""
    kind = type(estimator)
    return kind.__name__ == name and kind.__module__ == "lightgbm.sklearn"


NULLABLE_NUMBERS = (
    pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype, pd.UInt8Dtype, pd.UInt16Dtype,
    pd.UInt32Dtype, pd.UInt64Dtype, pd.Float32Dtype, pd.Float64Dtype, pd.BooleanDtype,
)  # fmt: skip


def _plain_number(column: Any) -> bool:
    """A frame column LightGBM reads as numbers, as this path does: numpy's booleans, integers
    and floats up to 64 bits, or pandas' nullable ones. Anything else (text, dates, complex,
    ``float128``, Arrow-backed, a duplicated name) is left to the frame and its refusal."""
    dtype = getattr(column, "dtype", None)
    if isinstance(dtype, np.dtype):
        return dtype.kind in "biuf" and dtype.itemsize <= 8
    return isinstance(dtype, NULLABLE_NUMBERS)


def _fitted(estimator: Any) -> bool:
    """Whether LightGBM says the estimator is fitted (an unfitted one has no booster)."""
    try:
        return bool(estimator.__sklearn_is_fitted__())
    except Exception:
        return False
