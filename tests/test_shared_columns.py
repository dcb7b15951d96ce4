"""A partition with text features fits its ColumnTransformer once per fold and preprocessing
shape (``training.shared_columns``), not once per candidate × grid point × fold — and its
scores, choice and stored model are those of each candidate's own Pipeline fitted whole, the
same bits, for regression and classification."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer

from manymodels import candidates as cands
from manymodels.classes import class_prior
from manymodels.spec import Spec
from manymodels.training import classify
from manymodels.training.metrics import mean_of, metric
from manymodels.training.select import fit_partition
from manymodels.training.splits import take, validation_splits

CATEGORICAL = ["dept", "event"]
NUMERIC = ["price"]


def rows(n: int = 120, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """One item's days: a text dept and event (a rare one among them), a price, and sales."""
    rng = np.random.default_rng(seed)
    event = rng.choice(["none", "none", "none", "payday", "holiday"], n)
    dept = rng.choice(["FOODS", "HOBBIES"], n)
    price = np.round(rng.uniform(1, 6, n), 2)
    sales = 4 + 3 * (event == "payday") - 0.4 * price + (dept == "FOODS") + rng.normal(0, 1, n)
    return pd.DataFrame({"dept": dept, "event": event, "price": price}), sales


REGRESSORS: list[dict[str, Any]] = [
    {"estimator": "sklearn.linear_model.Ridge", "scale": True, "params": {"alpha": [0.1, 10.0]}},
    {"estimator": "sklearn.linear_model.Lasso", "params": {"alpha": [0.01, 0.1]}},
    {"estimator": "sklearn.tree.DecisionTreeRegressor", "params": {"max_depth": [3]}},
    # dense input only (sparse_threshold 0): a third shape
    {"estimator": "sklearn.ensemble.HistGradientBoostingRegressor", "params": {"max_iter": [10]}},
]
CLASSIFIERS: list[dict[str, Any]] = [
    {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "scale": True,
        "params": {"C": [0.1, 1.0]},
    },
    {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": [2, 4]}},
]


def spec(task: str, candidates: list[dict[str, Any]], **more: Any) -> Spec:
    return Spec.from_dict(
        {
            "name": "shared",
            "task": task,
            "partition_by": ["item"],
            "target": "sales",
            "time_column": "day",
            "features": [*CATEGORICAL, *NUMERIC],
            "metric": "neg_mean_absolute_error" if task == "regression" else "neg_log_loss",
            "validation": {"strategy": "kfold", "size": 10, "folds": 3},
            "selection": {"naive_candidate": False},
            "candidates": candidates,
            "seed": 0,
            **more,
        }
    )


@pytest.fixture
def column_fits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every ``ColumnTransformer.fit_transform`` and ``transform``, noted and then run."""
    calls: list[str] = []
    real_fit, real_transform = ColumnTransformer.fit_transform, ColumnTransformer.transform

    def fit_transform(self: ColumnTransformer, X: Any, y: Any = None, **k: Any) -> Any:
        calls.append("fit")
        return real_fit(self, X, y, **k)

    def transform(self: ColumnTransformer, X: Any, **k: Any) -> Any:
        calls.append("transform")
        return real_transform(self, X, **k)

    monkeypatch.setattr(ColumnTransformer, "fit_transform", fit_transform)
    monkeypatch.setattr(ColumnTransformer, "transform", transform)
    yield calls


def test_each_fold_fits_its_preprocessing_once_per_shape(column_fits: list[str]) -> None:
    """6 grid points × 3 folds were 18 ColumnTransformer fits and 18 transforms of validation
    rows; 3 shapes (scaled, not scaled, dense) × 3 folds are 9 of each, and 1 refit."""
    X, y = rows()
    fitted = fit_partition(
        X, y, spec("regression", REGRESSORS), key="item=a", categorical=CATEGORICAL,
        numeric=NUMERIC,
    )  # fmt: skip
    assert len(fitted.candidates) == 6 and all(c.error is None for c in fitted.candidates)
    assert column_fits.count("fit") == 3 * 3 + 1
    assert column_fits.count("transform") == 3 * 3


def expected_scores(
    s: Spec, X: pd.DataFrame, y: np.ndarray, score_fn: Any
) -> dict[tuple[str, str], float]:
    """Each grid point's mean fold score from its own Pipeline fitted whole, as before."""
    splits = validation_splits(len(y), s, key="item=a")
    out = {}
    for cand in s.candidates:
        for params in cands.grid(cand):
            scores = []
            for tr, va in splits:
                model = cands.build(
                    cand, params, categorical=CATEGORICAL, numeric=NUMERIC, seed=s.seed
                )
                model.fit(take(X, tr), y[tr])
                scores.append(score_fn(model, take(X, va), y[va]))
            out[(cand.label, repr(params))] = mean_of(scores)
    return out


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_scores_choice_and_model_are_those_of_each_pipeline_fitted_whole(task: str) -> None:
    X, y = rows()
    candidates = REGRESSORS
    if task == "classification":
        y, candidates = np.where(y > np.median(y), "high", "low"), CLASSIFIERS
    s = spec(task, candidates)
    score_fn = (
        metric(s.metric_name) if task == "regression" else classify.spec_metric(s, class_prior(y))
    )
    fitted = fit_partition(
        X, y, s, key="item=a", categorical=CATEGORICAL, numeric=NUMERIC
    )  # fmt: skip
    expected = expected_scores(s, X, y, score_fn)
    got = {(c.label, repr(c.params)): c.score for c in fitted.candidates}
    assert got == expected  # the same bits: the same fits of the same matrices
    best = max(expected, key=lambda k: expected[k])
    assert repr(fitted.params) == best[1]
    assert fitted.score == expected[best]
    cand = next(c for c in s.candidates if c.label == best[0])
    whole = cands.build(
        cand, fitted.params, categorical=CATEGORICAL, numeric=NUMERIC, seed=s.seed
    ).fit(X, y)
    # the stored model is a whole fitted Pipeline, the one scikit-learn fits
    assert type(fitted.model.steps[0][1]) is ColumnTransformer
    assert pickle.dumps(fitted.model) == pickle.dumps(whole)
    held_out, _ = rows(30, seed=9)
    held_out.loc[0, "event"] = "new"  # a level never seen: encoded as zeros
    answer = "predict" if task == "regression" else "predict_proba"
    np.testing.assert_array_equal(
        getattr(fitted.model, answer)(held_out), getattr(whole, answer)(held_out)
    )


def test_a_partition_without_text_features_fits_as_before(column_fits: list[str]) -> None:
    X, y = rows()
    numeric = X[NUMERIC].to_numpy(float)
    s = spec("regression", REGRESSORS[1:3])
    fitted = fit_partition(numeric, y, s, key="item=a", numeric=NUMERIC)
    assert column_fits == []
    expected = expected_scores_numeric(s, numeric, y)
    assert {(c.label, repr(c.params)): c.score for c in fitted.candidates} == expected


def expected_scores_numeric(s: Spec, X: np.ndarray, y: np.ndarray) -> dict[tuple[str, str], float]:
    splits = validation_splits(len(y), s, key="item=a")
    score_fn = metric(s.metric_name)
    return {
        (cand.label, repr(params)): mean_of(
            [
                score_fn(cands.build(cand, params, seed=s.seed).fit(X[tr], y[tr]), X[va], y[va])
                for tr, va in splits
            ]
        )
        for cand in s.candidates
        for params in cands.grid(cand)
    }


def test_a_top2_mean_refits_one_transform_for_members_of_one_shape(
    column_fits: list[str],
) -> None:
    """Its two members were two ColumnTransformer fits on the same rows; one now, each member
    keeping its own fitted copy, each pickled as the Pipeline fitted whole."""
    from manymodels.training import ridge_refit

    X, y = rows()
    s = spec("regression", REGRESSORS[1:3])  # Lasso and a tree: one shape
    built = [
        cands.build(c, p, categorical=CATEGORICAL, numeric=NUMERIC, seed=s.seed)
        for c in s.candidates
        for p in list(cands.grid(c))[:1]
    ]
    mean = ridge_refit.fit(cands.MeanOf(built), X, y)
    assert column_fits.count("fit") == 1
    column_fits.clear()
    whole = [
        cands.build(c, p, categorical=CATEGORICAL, numeric=NUMERIC, seed=s.seed).fit(X, y)
        for c in s.candidates
        for p in list(cands.grid(c))[:1]
    ]
    first, second = mean.members
    assert first.steps[0][1] is not second.steps[0][1]
    for member, alone in zip(mean.members, whole, strict=True):
        assert pickle.dumps(member) == pickle.dumps(alone)
    held_out, _ = rows(30, seed=9)
    expected = cands.MeanOf(whole).predict(held_out)
    np.testing.assert_array_equal(mean.predict(held_out), expected)


def test_past_its_byte_budget_a_fold_is_fitted_whole_and_nothing_more_is_kept() -> None:
    """Sharing keeps every fold's transformed training rows for the whole partition (a
    60,000-row partition at 10 folds peaked at 3.66 GB, 0.84 GB before): past ``keep_bytes``
    a fold's pipeline is fitted whole, as before sharing, its predictions the same bits."""
    from sklearn.base import clone

    from manymodels.training.shared_columns import SharedColumns, nbytes

    X, y = rows()
    s = spec("regression", REGRESSORS)
    made = [cands.build(c, p, categorical=CATEGORICAL, numeric=NUMERIC, seed=0)
            for c in s.candidates for p in cands.grid(c)]  # fmt: skip
    splits = validation_splits(len(y), s, key="item=a")
    first = made[0].steps[0][1].fit_transform(take(X, splits[0][0]), y[splits[0][0]])
    shared = SharedColumns(X, y, keep_bytes=nbytes(first))  # room for one matrix
    for model in made:
        for at, (tr, va) in enumerate(splits):
            whole = clone(model).fit(take(X, tr), y[tr])
            fit = shared.fit(clone(model), at, tr)
            assert np.array_equal(fit.predict(take(X, va)), whole.predict(take(X, va)))
    assert shared.fits == 1 and shared.kept == nbytes(first)
