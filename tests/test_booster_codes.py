"""A global LightGBM's key and category codes (``booster_input._coded``) are looked up in C
now, no longer judged and looked up row by row in Python: the same codes, to the byte, as the
row-by-row loop (kept here as the reference) on awkward values — text and integers mixed,
unicode, integers past 2**53, numpy scalars, ``None``, ``pd.NA``, NaN, refused types — and the
same predictions as the frame for a model keyed by several such columns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.training.booster_input import LOOKED_UP, _coded, booster_predict
from manymodels.training.global_fit import GlobalModel

lgb = pytest.importorskip("lightgbm")


def reference(
    table: dict[Any, int], values: Sequence[Any], *, nan_missing: bool = False
) -> np.ndarray | None:
    """``_coded`` as it was (3f237b7): each value judged and looked up in a Python loop."""
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if value is None or value is pd.NA:
            out[i] = math.nan
            continue
        if not isinstance(value, LOOKED_UP) or isinstance(value, np.timedelta64):
            return None
        if isinstance(value, float | np.floating) and math.isnan(value):
            if not nan_missing:
                return None
            out[i] = math.nan
            continue
        out[i] = table.get(value, math.nan)
    return out


CATEGORIES: list[Any] = ["a", "é", "日本", "", "p 1", 1, 2, -3, 2**60 + 1, 2.5, 0, "1"]
TABLE = {value: code for code, value in enumerate(CATEGORIES)}  # as ``_build`` makes it

KNOWN: list[Any] = [
    *CATEGORIES, np.int64(2), np.int32(-3), np.uint64(2**60 + 1), 2**60, float(2**60),
    1.0, np.float32(2.5), np.float64(-0.0), True, False, np.bool_(True), "never", 7, "日",
]  # fmt: skip
MISSING: list[Any] = [None, pd.NA, math.nan, np.float64("nan"), np.float32("nan")]
REFUSED: list[Any] = [
    np.timedelta64(1, "s"), pd.Timestamp("2024-01-01"), b"a", Decimal("1"), (1, 2),
    np.datetime64("2024-01-01"), 1j,
]  # fmt: skip


def same(got: np.ndarray | None, want: np.ndarray | None) -> bool:
    """Both ``None``, or the same float64 bytes (NaN's bits included)."""
    if got is None or want is None:
        return got is want
    return got.dtype == want.dtype and got.tobytes() == want.tobytes()


def as_objects(values: list[Any]) -> np.ndarray:
    """``values`` as ``row_keys`` hands them over: an object array of the values themselves."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@pytest.mark.parametrize("nan_missing", [False, True])
def test_codes_are_the_row_by_row_loops_bytes_on_awkward_values(nan_missing: bool) -> None:
    rng = np.random.default_rng(7)
    pools = [KNOWN, KNOWN + MISSING, MISSING, KNOWN + REFUSED, KNOWN + MISSING + REFUSED]
    for trial in range(600):
        pool = pools[trial % len(pools)]
        values = [pool[i] for i in rng.integers(0, len(pool), int(rng.integers(0, 40)))]
        want = reference(TABLE, values, nan_missing=nan_missing)
        for given in (values, as_objects(values)):
            got = _coded(TABLE, given, nan_missing=nan_missing)
            assert same(got, want), (values, got, want)
    assert _coded(TABLE, [], nan_missing=nan_missing) is not None


@pytest.mark.parametrize(
    "array",
    [
        np.array([2, 0, 1, 7, -3]),
        np.array([2.5, 0.0, -0.0, math.nan, 1.0]),
        np.array([2.5, math.nan], dtype=np.float32),
        np.array([True, False]),
        np.array([2**60 + 1, 2**60], dtype=np.uint64),
        np.array(["a", "日本", "x"]),
        np.array([1, 2], dtype="timedelta64[s]"),
    ],
)
def test_numpy_arrays_are_coded_as_the_loop_codes_their_scalars(array: np.ndarray) -> None:
    for nan_missing in (False, True):
        want = reference(TABLE, array, nan_missing=nan_missing)
        assert same(_coded(TABLE, array, nan_missing=nan_missing), want)


def test_a_model_keyed_by_several_awkward_columns_predicts_the_frames_bits() -> None:
    """Three key columns — text and integers mixed, unicode, integers past 2**53 — fitted,
    then asked per row with unseen and missing keys among them: the matrix's predictions are
    the frame's, the same bits."""
    rng = np.random.default_rng(3)
    n = 600
    X = rng.normal(size=(n, 2))
    mixed = rng.choice(np.array(["x", 1, "y", 2, 3], dtype=object), n)
    text = rng.choice(np.array(["é", "日本", "ß", "a b"], dtype=object), n)
    big = rng.choice(np.array([2**60 + 1, 2**60 + 2, -(2**62)], dtype=object), n)
    shift = {"x": 0.0, 1: 1.0, "y": 2.0, 2: 3.0, 3: 4.0}
    y = X @ [1.0, -1.0] + np.array([shift[m] for m in mixed])
    estimator = lgb.LGBMRegressor(n_estimators=20, min_child_samples=5, verbose=-1)
    model = GlobalModel(estimator, ["a", "b"], [], ["m", "t", "g"])
    model.fit(X, y, [mixed, text, big])
    keys = [as_objects(list(k[:60])) for k in (mixed, text, big)]
    keys[0][[1, 5]] = ["never", np.int64(2)]  # unseen; a numpy integer equal to a category
    keys[1][[2, 8]] = [None, "日"]  # a missing key (NaN for both ways), an unseen one
    keys[2][4] = pd.NA
    fast = booster_predict(model, X[:60], keys)
    assert fast is not None
    frame = np.asarray(model.estimator.predict(model.frame(X[:60], keys)))
    assert fast.tobytes() == frame.tobytes()
    one = [["y"], ["ß"], [2**60 + 2]]  # a bound partition's key
    bound = booster_predict(model, X[:3], one)
    assert bound is not None
    assert bound.tobytes() == np.asarray(model.estimator.predict(model.frame(X[:3], one))).tobytes()
