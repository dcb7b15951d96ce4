"""The chosen Ridge's refit on all rows made without scikit-learn's ``fit`` (``ridge_refit``)
is scikit-learn's fit: the same attributes on the same estimator objects, so the same pickled
artifact and the same predictions, bit for bit — and every parameter or input the path does not
cover is fitted by scikit-learn itself."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import LinAlgWarning
from sklearn import config_context
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted

from manymodels.candidates import MeanOf
from manymodels.training import ridge_refit


def features(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Columns on very different scales, one constant and one constant up to rounding error
    (``StandardScaler`` scales both by 1), and a target that depends on some of them."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(size=rows) * 1000 + 5e4,
            rng.normal(size=rows) * 0.01,
            np.full(rows, 7.0),
            np.where(np.arange(rows) % 2, np.nextafter(1e5, np.inf), 1e5),  # one ulp apart
            rng.integers(0, 2, size=rows).astype(float),
        ]
    )
    y = 0.002 * X[:, 0] + 300 * X[:, 1] + 3 * X[:, 4] + rng.normal(size=rows)
    return X, y


def model(alpha: float, scale: bool, **params: Any) -> Any:
    ridge = Ridge(alpha, **params)
    return make_pipeline(StandardScaler(), ridge) if scale else ridge


def as_given(X: np.ndarray, layout: str) -> Any:
    if layout == "fortran":
        return np.asfortranarray(X)
    if layout == "frame":
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    return X


@pytest.mark.parametrize("layout", ["C", "fortran", "frame"])
@pytest.mark.parametrize("rows", [60, 6])  # 6 rows: one more than the 5 features
@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_the_refit_is_scikit_learns_fit_bit_for_bit(layout: str, rows: int, alpha: float) -> None:
    X, y = features(rows)
    given = as_given(X, layout)
    new_rows = as_given(features(9, seed=1)[0], layout)
    for scale in (True, False):
        expected = model(alpha, scale, random_state=0).fit(given, y)
        mine = model(alpha, scale, random_state=0)
        assert ridge_refit.fitted_here(mine, given, y)
        ridge, theirs = (mine[-1], expected[-1]) if scale else (mine, expected)
        np.testing.assert_array_equal(ridge.coef_, theirs.coef_)
        assert ridge.intercept_ == theirs.intercept_
        assert ridge.n_features_in_ == 5
        if layout == "frame":
            first = mine[0] if scale else mine
            assert list(first.feature_names_in_) == [f"x{i}" for i in range(5)]
        np.testing.assert_array_equal(mine.predict(new_rows), expected.predict(new_rows))
        assert pickle.dumps(mine) == pickle.dumps(expected)  # the artifact's very bytes


def test_a_top2_mean_refits_its_local_member_here_and_the_rest_by_themselves() -> None:
    X, y = features(40)
    tree = DecisionTreeRegressor(max_depth=2, random_state=0)
    mean = MeanOf([model(1.0, True), tree])
    assert ridge_refit.fit(mean, X, y) is mean
    expected = MeanOf([model(1.0, True), DecisionTreeRegressor(max_depth=2, random_state=0)])
    np.testing.assert_array_equal(mean.predict(X), expected.fit(X, y).predict(X))


@pytest.mark.parametrize(
    "unsupported",
    [
        pytest.param(lambda: model(1.0, True, solver="svd"), id="solver=svd"),
        pytest.param(lambda: model(1.0, True, positive=True), id="positive"),
        pytest.param(lambda: model(1.0, True, fit_intercept=False), id="no-intercept"),
        pytest.param(lambda: make_pipeline(StandardScaler(with_mean=False), Ridge()), id="scaler"),
        pytest.param(lambda: model(np.array([1.0]), False), id="alpha-array"),
    ],
)
def test_unsupported_params_take_scikit_learns_own_fit(unsupported: Any) -> None:
    X, y = features(40)
    mine = unsupported()
    assert not ridge_refit.fitted_here(mine, X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(mine)  # left as it was
    ridge_refit.fit(mine, X, y)
    np.testing.assert_array_equal(mine.predict(X), unsupported().fit(X, y).predict(X))


def test_inputs_the_path_does_not_cover_take_scikit_learns_own_fit() -> None:
    X, y = features(40)
    wide = np.random.default_rng(0).normal(size=(4, 8))  # more features than rows
    assert not ridge_refit.fitted_here(model(1.0, True), wide, y[:4])
    assert not ridge_refit.fitted_here(model(1.0, True), X.astype(np.float32), y)
    assert not ridge_refit.fitted_here(model(1.0, True), pd.DataFrame(X), y)  # unnamed columns
    twice = np.random.default_rng(0).normal(size=20) * 1e6  # a column and its copy, unscaled:
    ill = np.column_stack([twice, twice, np.arange(20.0)])  # scipy warns, rcond ~ 3e-17
    assert not ridge_refit.fitted_here(model(1e-3, False), ill, y[:20])
    with pytest.warns(LinAlgWarning):  # scikit-learn's own warning, kept with the version
        ridge_refit.fit(model(1e-3, False), ill, y[:20])
    with config_context(transform_output="pandas"):  # the scaler would hand on a frame
        assert not ridge_refit.fitted_here(model(1.0, True), X, y)
    assert not ridge_refit.fitted_here(model(1.0, True).set_output(transform="pandas"), X, y)
    holed = X.copy()
    holed[3, 1] = np.nan
    assert not ridge_refit.fitted_here(model(1.0, True), holed, y)
    with pytest.raises(ValueError, match="NaN"):  # scikit-learn's own words
        ridge_refit.fit(model(1.0, True), holed, y)
