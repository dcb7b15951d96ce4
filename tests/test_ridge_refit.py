"""The chosen Ridge's refit on all rows made without scikit-learn's ``fit`` (``ridge_refit``)
is scikit-learn's fit: the same attributes on the same estimator objects, so the same pickled
artifact and the same predictions, bit for bit — and every parameter or input the path does not
cover is fitted by scikit-learn itself."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import ridge_features
from scipy.linalg import LinAlgWarning
from sklearn import config_context
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted

from manymodels.candidates import MeanOf
from manymodels.training import ridge_refit


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
    X, y = ridge_features(rows)
    given = as_given(X, layout)
    new_rows = as_given(ridge_features(9, seed=1)[0], layout)
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
    X, y = ridge_features(40)
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
    X, y = ridge_features(40)
    mine = unsupported()
    assert not ridge_refit.fitted_here(mine, X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(mine)  # left as it was
    ridge_refit.fit(mine, X, y)
    np.testing.assert_array_equal(mine.predict(X), unsupported().fit(X, y).predict(X))


def test_inputs_the_path_does_not_cover_take_scikit_learns_own_fit() -> None:
    X, y = ridge_features(40)
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


@pytest.mark.parametrize(
    "invalid",
    [
        pytest.param(lambda: model(1.0, True, tol=-1.0), id="tol"),
        pytest.param(lambda: model(1.0, False, max_iter=0), id="max_iter"),
        pytest.param(lambda: model(1.0, True, copy_X="yes"), id="copy_X"),
        pytest.param(lambda: model(1.0, False, random_state=2**32), id="random_state"),
        pytest.param(lambda: make_pipeline(StandardScaler(copy="no"), Ridge()), id="scaler-copy"),
        pytest.param(lambda: make_pipeline(StandardScaler(), Ridge(), verbose="x"), id="verbose"),
        pytest.param(lambda: Pipeline([("s", StandardScaler()), ("s", Ridge())]), id="names"),
        pytest.param(lambda: Pipeline([("a__b", StandardScaler()), ("r", Ridge())]), id="__"),
        pytest.param(lambda: Pipeline([("memory", StandardScaler()), ("r", Ridge())]), id="param"),
    ],
)
def test_parameters_scikit_learn_refuses_are_refused_as_it_refuses_them(invalid: Any) -> None:
    X, y = ridge_features(40)
    with pytest.raises(ValueError) as theirs:
        invalid().fit(X, y)
    mine = invalid()
    assert not ridge_refit.fitted_here(mine, X, y)
    with pytest.raises(ValueError) as refused:
        ridge_refit.fit(mine, X, y)
    assert str(refused.value) == str(theirs.value)


def test_duplicate_column_names_are_refused_as_scikit_learn_refuses_them() -> None:
    X, y = ridge_features(40)
    frame = pd.DataFrame(X, columns=["a", "b", "a", "c", "d"])
    for scale in (True, False):
        assert not ridge_refit.fitted_here(model(1.0, scale), frame, y)
        with pytest.raises(ValueError, match="unique column names"):
            ridge_refit.fit(model(1.0, scale), frame, y)


@pytest.mark.parametrize(
    "in_place",
    [
        pytest.param(lambda: make_pipeline(StandardScaler(copy=False), Ridge()), id="scaler"),
        pytest.param(lambda: model(1.0, False, copy_X=False), id="ridge"),
    ],
)
def test_a_fit_that_rewrites_the_callers_rows_is_scikit_learns(in_place: Any) -> None:
    X, y = ridge_features(40)
    theirs, mine = X.copy(), X.copy()
    in_place().fit(theirs, y)
    assert not np.array_equal(theirs, X)  # scaled or centred where they were
    assert not ridge_refit.fitted_here(in_place(), mine, y)
    ridge_refit.fit(in_place(), mine, y)
    np.testing.assert_array_equal(mine, theirs)


def test_a_pipelines_log_and_callbacks_are_scikit_learns(capsys: pytest.CaptureFixture) -> None:
    X, y = ridge_features(40)
    make_pipeline(StandardScaler(), Ridge(), verbose=True).fit(X, y)
    printed = capsys.readouterr().out
    assert "Processing ridge" in printed
    ridge_refit.fit(make_pipeline(StandardScaler(), Ridge(), verbose=True), X, y)
    assert "Processing ridge" in capsys.readouterr().out
    calls: list[str] = []

    class Counted:  # scikit-learn's FitCallback protocol
        def setup(self, estimator: Any, context: Any) -> None:
            calls.append("setup")

        def on_fit_task_begin(self, estimator: Any, context: Any, **kwargs: Any) -> None:
            calls.append("begin")

        def on_fit_task_end(self, estimator: Any, context: Any, **kwargs: Any) -> None:
            calls.append("end")

        def teardown(self, estimator: Any, context: Any) -> None:
            calls.append("teardown")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ridge itself takes no callbacks: scikit-learn says so
        ridge_refit.fit(make_pipeline(StandardScaler(), Ridge()).set_callbacks(Counted()), X, y)
    assert calls[0] == "setup" and calls[-1] == "teardown"
    calls.clear()
    ridge_refit.fit(make_pipeline(StandardScaler().set_callbacks(Counted()), Ridge()), X, y)
    assert calls[0] == "setup" and calls[-1] == "teardown"  # the scaler's own, likewise


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Pipeline((("s", StandardScaler()), ("r", Ridge()))), id="tuple"),
        pytest.param(lambda: Pipeline([["s", StandardScaler()], ["r", Ridge()]]), id="lists"),
    ],
)
def test_steps_scikit_learn_rewrites_are_rewritten_as_it_does(make: Any) -> None:
    X, y = ridge_features(40)
    mine = ridge_refit.fit(make(), X, y)
    assert pickle.dumps(mine) == pickle.dumps(make().fit(X, y))


@pytest.mark.parametrize("scale", [True, False])
def test_a_second_fit_leaves_what_scikit_learns_second_fit_leaves(scale: bool) -> None:
    X, y = ridge_features(40)
    named = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    for first, second in ((named, X), (X, named)):  # names dropped, names added
        expected = model(1.0, scale).fit(first, y).fit(second, y)
        mine = ridge_refit.fit(model(1.0, scale).fit(first, y), second, y)
        assert pickle.dumps(mine) == pickle.dumps(expected)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no stale names: the rows' own kind predicts quietly
            np.testing.assert_array_equal(mine.predict(second), expected.predict(second))


def test_underflow_the_caller_asked_to_hear_of_is_heard_as_scikit_learn_hears_it() -> None:
    X, y = ridge_features(40)
    tiny = X * 1e-300  # squares underflow in the scaler's variance, ignored by default
    with np.errstate(under="raise"):
        with pytest.raises(FloatingPointError, match="underflow"):
            model(1.0, True).fit(tiny, y)
        assert not ridge_refit.fitted_here(model(1.0, True), tiny, y)
        with pytest.raises(FloatingPointError, match="underflow"):
            ridge_refit.fit(model(1.0, True), tiny, y)
    assert ridge_refit.fitted_here(model(1.0, True), tiny, y)  # numpy's default: quietly here
