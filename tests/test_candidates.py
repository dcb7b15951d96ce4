"""Tests for manymodels.candidates: resolving, grids, building, naive baselines."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from factories import RIDGE
from scipy.sparse import issparse
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from manymodels.candidates import (
    LastValueRegressor,
    build,
    grid,
    mean_of_members,
    naive_baseline,
    resolve,
    takes_sparse,
)
from manymodels.spec import Candidate


def test_resolve_class_and_factory_paths() -> None:
    assert resolve(RIDGE) is Ridge
    import factories

    assert resolve("factories:scaled_ridge") is factories.scaled_ridge


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("Ridge", "not an import path"),
        ("sklearn.linear_model.", "not an import path"),
        ("no_such_pkg.Thing", "cannot import module 'no_such_pkg'"),
        ("sklearn.linear_model.Rige", "has no attribute 'Rige'"),
    ],
)
def test_resolve_errors(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve(path)


def test_a_missing_extra_s_estimator_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where lightgbm is not installed (None in sys.modules: Python's own "not importable"),
    the error says which extra installs it, not only "No module named 'lightgbm'"."""
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    resolve.cache_clear()
    try:
        with pytest.raises(ValueError) as raised:
            resolve("lightgbm.LGBMRegressor")
    finally:
        resolve.cache_clear()
    message = str(raised.value)
    assert message.startswith("cannot import module 'lightgbm' for 'lightgbm.LGBMRegressor'")
    assert message.endswith(": pip install 'manymodels[lightgbm]'")
    with pytest.raises(ValueError) as other:
        resolve("no_such_pkg.Thing")
    assert "pip install" not in str(other.value)  # a package no extra installs: no advice


def test_grid_expands_every_combination_in_a_stable_order() -> None:
    cand = Candidate(estimator=RIDGE, params={"alpha": [0.1, 1.0], "fit_intercept": [True, False]})
    points = list(grid(cand))
    assert len(points) == 4
    assert points == list(grid(cand))
    assert {(p["alpha"], p["fit_intercept"]) for p in points} == {
        (0.1, True), (0.1, False), (1.0, True), (1.0, False)
    }  # fmt: skip
    assert list(grid(Candidate(estimator=RIDGE))) == [{}]


def test_build_plain_scaled_and_categorical() -> None:
    plain = build(Candidate(estimator=RIDGE), {"alpha": 3.0})
    assert isinstance(plain, Ridge)
    assert plain.alpha == 3.0

    scaled = build(Candidate(estimator=RIDGE, scale=True), {})
    assert isinstance(scaled, Pipeline)
    assert isinstance(scaled.steps[0][1], StandardScaler)

    onehot = build(Candidate(estimator=RIDGE), {}, categorical=["plan"], numeric=["x"])
    pre = onehot.steps[0][1]
    assert isinstance(pre, ColumnTransformer)
    assert isinstance(pre.transformers[0][1], OneHotEncoder)
    X = pd.DataFrame({"plan": ["a", "b", "a", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    onehot.fit(X, np.array([1.0, 2.0, 3.0, 4.0]))
    # unseen categories at predict time do not raise
    assert onehot.predict(pd.DataFrame({"plan": ["zzz"], "x": [1.0]})).shape == (1,)


def test_build_returns_a_fresh_estimator_each_time() -> None:
    cand = Candidate(estimator=RIDGE)
    assert build(cand, {}) is not build(cand, {})


def test_factory_builds_what_it_returns() -> None:
    model = build(Candidate(estimator="factories:scaled_ridge"), {"alpha": 5.0})
    assert isinstance(model, Pipeline)
    assert model.named_steps["ridge"].alpha == 5.0


def test_last_value_regressor() -> None:
    model = LastValueRegressor().fit(np.zeros((3, 1)), np.array([1.0, 5.0, 2.0]))
    assert model.predict(np.zeros((4, 1))).tolist() == [2.0] * 4


def test_naive_baselines() -> None:
    assert isinstance(naive_baseline("regression", time_ordered=True), LastValueRegressor)
    mean = naive_baseline("regression", time_ordered=False)
    assert isinstance(mean, DummyRegressor)
    assert mean.strategy == "mean"
    changes = naive_baseline("regression", time_ordered=True, differenced=True)
    changes.fit(np.zeros((3, 1)), np.array([4.0, -1.0, 7.0]))  # the last change is not carried
    assert changes.predict(np.zeros((2, 1))).tolist() == [0.0, 0.0]  # no change: the last value
    majority = naive_baseline("classification", time_ordered=True)
    assert isinstance(majority, DummyClassifier)
    assert majority.strategy == "most_frequent"


def test_an_estimator_taking_any_keyword_gets_parameters_outside_get_params() -> None:
    """LightGBM passes extra keywords to its engine (``verbose = -1`` silences it): the spec
    takes them there, and still refuses an unknown name on an estimator without ``**kwargs``."""
    lgbm = Candidate(estimator="lightgbm.LGBMRegressor", params={"verbose": [-1]})
    model = build(lgbm, next(grid(lgbm)))
    assert model.get_params()["verbose"] == -1
    with pytest.raises(ValueError, match="Ridge has no parameter"):
        Candidate(estimator=RIDGE, params={"verbose": [-1]})


@pytest.mark.parametrize(("typo", "meant"), [("num_leave", "num_leaves"),
                                             ("n_estimator", "n_estimators")])  # fmt: skip
def test_a_near_miss_of_a_named_parameter_is_refused_even_where_any_keyword_is_taken(
    typo: str, meant: str
) -> None:
    """LightGBM passed ``num_leave`` on to its booster, which ignored it with a notice on
    stdout: the model trained with 31 leaves and nothing said so. Its own aliases
    (``num_leaf``, ``min_data_in_leaf``, ``feature_fraction``) are still taken."""
    pytest.importorskip("lightgbm")
    with pytest.raises(ValueError, match=f"no parameter '{typo}': did you mean '{meant}'"):
        Candidate(estimator="lightgbm.LGBMRegressor", params={typo: [7]})
    for alias in ("num_leaf", "min_data_in_leaf", "feature_fraction", "lambda_l1", "seed"):
        Candidate(estimator="lightgbm.LGBMRegressor", params={alias: [1]})


def test_lightgbm_fits_on_one_thread_unless_the_spec_says_otherwise() -> None:
    """Every task gets one CPU; LightGBM's default takes every core whatever the thread
    limits around it say, so fits side by side would fight over them."""
    lgbm = Candidate(estimator="lightgbm.LGBMRegressor")
    assert build(lgbm, {}).get_params()["n_jobs"] == 1
    assert build(lgbm, {"n_jobs": 4}).get_params()["n_jobs"] == 4
    for alias in ("num_threads", "nthread"):
        chosen = build(lgbm, {alias: 2}).get_params()
        assert chosen[alias] == 2 and chosen.get("n_jobs") is None


def test_one_hot_columns_reach_an_estimator_that_refuses_sparse_input_dense() -> None:
    """A feature of many levels (or a global model's key columns) one-hot encodes to mostly
    zeros, which ``ColumnTransformer`` hands on as a sparse matrix: HistGradientBoosting
    refused it ("Sparse data was passed for X, but dense data is required"), Ridge takes it.
    One OpenMP thread, as a run's task fits (``execution``): HistGradientBoosting's default
    pool on a loaded 2-core machine took 20 s for what one thread fits in 0.3 s."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"shop": [f"s{i % 20}" for i in range(400)], "x": rng.normal(size=400)})
    y = X["x"].to_numpy() * 2 + X["shop"].str[1:].astype(float).to_numpy()
    for path, sparse in [
        ("sklearn.ensemble.HistGradientBoostingRegressor", False),
        ("sklearn.linear_model.Ridge", True),
    ]:
        model = build(Candidate(estimator=path), {}, categorical=["shop"], numeric=["x"])
        assert takes_sparse(model[-1]) is sparse
        with threadpool_limits(limits=1):
            pred = model.fit(X, y).predict(X)
        assert np.corrcoef(pred, y)[0, 1] > 0.9  # it learnt from the one-hot columns
        assert issparse(model[0].transform(X)) is sparse


@pytest.mark.parametrize("members", [2, 3, 5])
@pytest.mark.parametrize("shape", [(1,), (12,), (7, 2)])
def test_a_mean_of_members_is_numpys_to_the_bit(members: int, shape: tuple[int, ...]) -> None:
    """``mean_of_members`` replaced ``np.mean(..., axis=0)`` in every top-2 prediction: the
    same bits for zeros of both signs (its sum starts from 0.0), infinities, NaN, overflow
    and magnitudes far apart; the members' own arrays are left as they were."""
    rng = np.random.default_rng(members * 10 + len(shape))
    pools = [
        np.array([0.0, -0.0, 1.0, -1.0]),
        np.array([1.7e308, -1.7e308, 5e-324, -5e-324, 0.0, -0.0, np.inf, -np.inf, np.nan]),
    ]
    for _ in range(200):
        preds = [rng.choice(pools[rng.integers(2)], size=shape) for _ in range(members)]
        before = [p.tobytes() for p in preds]
        with np.errstate(all="ignore"):  # sums that overflow are among the cases
            preds.append(rng.normal(size=shape) * 10.0 ** rng.integers(-300, 300))
            before.append(preds[-1].tobytes())
            theirs = np.mean(preds, axis=0)
            ours = mean_of_members(preds)
        assert ours.shape == theirs.shape and ours.tobytes() == theirs.tobytes()
        assert [p.tobytes() for p in preds] == before


def test_a_mean_of_members_of_two_shapes_is_refused_as_numpy_refuses_it() -> None:
    with pytest.raises(ValueError, match="inhomogeneous"):
        mean_of_members([np.zeros(3), np.zeros(4)])
