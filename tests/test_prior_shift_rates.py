"""The prior shift's reference rates ``r`` (``training.shifted``): the global model's own mean
prediction over the partition's rows — each fold's training rows when a fold is scored, all
of them for the served model — not the table's rates. A model that holds the key learnt each
partition's rate, and dividing by the table's counted it twice; a pooled one's mean
prediction is about the table's rate, so for it little changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from manymodels.artifacts import LocalArtifactStore, deserialize
from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.classes import class_prior
from manymodels.partition import split
from manymodels.pipeline import train
from manymodels.prior_shift import PriorShifted, shift_factors
from manymodels.registry.client import Registry
from manymodels.registry.entities import ModelVersion
from manymodels.spec import Spec
from manymodels.training import classify, global_tasks
from manymodels.training.external import External
from manymodels.training.folds import Folds
from manymodels.training.global_fit import GlobalFit, build_model, row_keys, take_rows
from manymodels.training.global_folds import fold_rows
from manymodels.training.shifted import Shifted


def pooled_logistic() -> Pipeline:
    """A global candidate that does not see the key: a logistic regression on ``x`` alone
    (the key columns a global model is handed are dropped)."""
    from sklearn.compose import ColumnTransformer

    return Pipeline([("x", ColumnTransformer([("x", "passthrough", ["x"])])),
                     ("lr", LogisticRegression())])  # fmt: skip


def users(n_users: int = 12, rows: int = 16, small: int = 6, seed: int = 0) -> pd.DataFrame:
    """Users with rates of their own (a base from 0.1 to 0.9) and one slope in ``x``; the last
    ``small`` users have 6 rows (below ``spec``'s ``min_rows``), each with both classes."""
    rng = np.random.default_rng(seed)
    frames = []
    for u in range(n_users + small):
        n = 6 if u >= n_users else rows
        base = np.log(1 / (0.1 + 0.8 * (u % 5) / 4) - 1) * -1
        x = rng.normal(0, 1, n)
        y = (rng.random(n) < 1 / (1 + np.exp(-(x + base)))).astype(int)
        if u >= n_users:
            y[:2] = [0, 1]  # both classes: an unpenalized fit has a finite rate for it
        days = pd.date_range("2024-01-01", periods=n)
        frames.append(pd.DataFrame({"user": f"u{u:02d}", "day": days, "x": x, "click": y}))
    return pd.concat(frames, ignore_index=True)


def spec(glob: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "rates", "task": "classification", "partition_by": ["user"],
        "target": "click", "time_column": "day", "features": ["x"],
        "metric": "neg_log_loss", "validation": {"strategy": "last", "size": 4},
        "fallback": {"enabled": False}, "min_rows": 8,
        "selection": {"prior_shifted": True},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"},
                       {**glob, "scope": "global"}],
    }  # fmt: skip


KEY_AWARE = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 1e6}}
"""Nearly unpenalized, on the user one-hot and ``x``: its score equations make its mean
prediction over each user's rows that user's rate (the rate it learnt)."""


def small_versions(root: Path) -> list[ModelVersion]:
    with Registry(root) as reg:
        found = [reg.get_version(p.key) for p in reg.list_partitions(limit=1000)]
    small = [v for v in found if v.validation["chosen"] == "too_few_rows"]
    assert small and all(v.validation["too_few_rows"].get("served") == "prior_shifted"
                         for v in small)  # fmt: skip
    return small


def constant_of(v: ModelVersion, y: np.ndarray) -> np.ndarray:
    """``q``: the user's smoothed constant, with the rates and strength its version records."""
    rates = v.feature_schema["class_prior"]["rates"]
    return np.asarray(
        ConstantProbabilityClassifier([0, 1], rates, v.params["prior_rows"]).fit(None, y).proba_
    )


@pytest.mark.slow  # a real run (or a fold's fits): ~5-15 s on a busy machine
def test_a_key_aware_model_that_learnt_each_rate_is_shifted_only_by_the_smoothing(
    tmp_path: Path,
) -> None:
    """``r_p`` is the user's own rate ``k/n`` (what the model learnt) up to the fit's
    precision ``L = (k/n) / r_p``, so the factor ``q / r_p = (1 + s) L`` is 1 but for the
    smoothing ``s = q / (k/n) - 1`` (the constant's pull toward the table's rate: what the
    smoothing means, not a double count) and ``L - 1``: ``|factor - 1| <= |s| L + |L - 1|``.
    Divided by the table's rate (before), a user at 0.2 against a table at 0.5 was shifted by
    ~0.4 on top of the rate the model already had."""
    data = users()
    train(spec(KEY_AWARE), data, tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        (glob,) = reg.list_runs(limit=1)[0].options["global"]
        model = deserialize(reg.artifacts.get(glob["sha256"]))
    for v in small_versions(tmp_path / "reg"):
        user = v.key.split("=")[1]
        rows = data[data["user"] == user]
        y = rows["click"].to_numpy()
        n = len(y)
        shift = np.asarray(v.params["shift"])
        r_p = model.predict_proba(rows[["x"]], [[user] * n]).mean(axis=0)
        assert np.allclose(shift, constant_of(v, y) / r_p, rtol=1e-9)  # r: its own mean
        own = np.array([np.mean(y == 0), np.mean(y == 1)])  # the rate it learnt …
        table = np.asarray(v.feature_schema["class_prior"]["rates"])
        smoothing = constant_of(v, y) / own - 1  # the constant's pull toward ``table``
        learnt = own / r_p  # … up to its solver and its (tiny) penalty
        bound = np.abs(smoothing) * learnt + np.abs(learnt - 1)  # equal when signs agree
        assert np.all(np.abs(shift - 1) <= bound * (1 + 1e-9)), (v.key, shift, bound)
        assert not np.allclose(shift, constant_of(v, y) / table, rtol=1e-2)  # before


@pytest.mark.slow  # a real run (or a fold's fits): ~5-15 s on a busy machine
def test_a_pooled_models_own_rate_is_about_the_tables(tmp_path: Path) -> None:
    """Not seeing the key, its mean prediction over a user's 6 rows differs from its mean over
    the table (the table's rate, for a logistic regression with an intercept) only by the
    spread of its predictions over 6 rows: within four standard errors of that mean."""
    data = users()
    s = spec({"estimator": "test_prior_shift_rates:pooled_logistic"})
    train(s, data, tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        (glob,) = reg.list_runs(limit=1)[0].options["global"]
        model = deserialize(reg.artifacts.get(glob["sha256"]))
    p1 = model.predict_proba(data[["x"]], [data["user"].to_numpy()])[:, 1]
    assert abs(p1.mean() - data["click"].mean()) < 1e-3  # an intercept: its mean is the rate
    for v in small_versions(tmp_path / "reg"):
        y = data.loc[data["user"] == v.key.split("=")[1], "click"].to_numpy()
        r = constant_of(v, y) / np.asarray(v.params["shift"])  # the r it divided by
        table = np.asarray(v.feature_schema["class_prior"]["rates"])
        assert np.isclose(r.sum(), 1.0)
        assert abs(r[1] - table[1]) <= 4 * p1.std() / np.sqrt(len(y)), (v.key, r, table)


@pytest.mark.slow  # a real run (or a fold's fits): ~5-15 s on a busy machine
def test_a_fold_is_shifted_by_its_training_rows_never_its_validation_rows(
    tmp_path: Path,
) -> None:
    """The fold fit's predictions of a user's validation rows (an ``x`` far above its training
    rows': a high click probability) would raise ``r_p`` and lower the factor of class 1; the
    fold is scored with ``r_p`` from the training rows alone, and those are the only rows of
    the partition the fold's task predicts besides its validation rows."""
    data = users()
    last = data.groupby("user").cumcount(ascending=False) < 4
    data.loc[last & (data["user"] == "u03"), "x"] = 4.0
    s = Spec.from_dict(spec(KEY_AWARE))
    table = split(data, partition_by=["user"], target="click", features=["x"],
                  time_column="day")  # fmt: skip
    cand = next(c for c in s.candidates if c.scope == "global")
    work = global_tasks.tasks(s, [(None, cand, {})])
    store = LocalArtifactStore(tmp_path)
    results = [global_tasks.run_task(t, s, store, table) for t in work]
    fit = global_tasks.assemble(GlobalFit(cand.label, cand.estimator, {}), results, table, s)
    _, [(train_rows, valid)] = fold_rows(table, s)
    (own,) = fit.own_pred.values()
    predicted = np.flatnonzero(~np.isnan(own[:, 0]))
    assert not np.isin(predicted, valid).any() and len(predicted)

    i = list(table.keys).index("user=u03")
    rows = np.arange(table.offsets[i], table.offsets[i + 1])
    model = build_model(cand, {}, table, s)  # the fold's fit, again: lbfgs is deterministic
    model.fit(take_rows(table.X, train_rows), table.y[train_rows], row_keys(table, train_rows))
    everything = model.predict_proba(take_rows(table.X, rows), row_keys(table, rows))
    tr, va = np.arange(len(rows) - 4), np.arange(len(rows) - 4, len(rows))
    assert np.allclose(own[rows[tr]], everything[tr])

    prior = class_prior(table.y, np.asarray(table.offsets))
    ext = External(cand.label, cand.estimator, {}, "0" * 64, 0, fit.val_pred[rows], "none",
                   own={g: p[rows] for g, p in fit.own_pred.items()})  # fmt: skip
    y = table.y[rows]
    folds = Folds(table.X.iloc[rows] if hasattr(table.X, "iloc") else table.X[rows], y,
                  [(tr, va)], classify.ProbaMetric("log_loss", prior.classes))  # fmt: skip
    option = Shifted(ext, s, prior)
    (got,) = option.fold_fits(folds)
    q = classify.smoothed_constant(s, prior).fit(None, y[tr]).proba_
    for r, same in ((everything[tr].mean(axis=0), True), (everything.mean(axis=0), False)):
        shifted = fit.val_pred[rows][va] * q / r
        shifted /= shifted.sum(axis=1, keepdims=True)
        assert np.allclose(got.full[va], shifted) is same, r


def test_a_class_the_model_never_gives_keeps_todays_zero_rate_factor() -> None:
    """``r_p,c = 0`` (the member never answers ``c``): the factor is ``q_c`` over the floor a
    zero table rate always had, and the class still gets probability 0, the rest summing to
    one: no NaN, no infinity."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    member = LogisticRegression().fit(X, np.array(["a", "b", "a", "b"]))
    own = np.array([0.4, 0.4, 0.2])
    rates = np.array([0.5, 0.5, 0.0])  # the mean prediction of a member without class "c"
    shift = shift_factors(own, rates)
    assert shift[:2] == [0.8, 0.8] and shift[2] == 0.2 / 1e-300
    proba = PriorShifted(member, shift, ["a", "b", "c"]).predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1)
    assert np.all(proba[:, 2] == 0)


def test_without_the_fits_predictions_a_fold_divides_by_the_tables_rates() -> None:
    """A stored global model rescored by a retrain predicted no training rows (``own`` is
    empty): its folds keep the table's rates, as before."""
    prior = class_prior(np.array([0, 0, 0, 1, 1, 0, 1, 0]), np.array([0, 8]))
    s = Spec.from_dict(spec(KEY_AWARE))
    pred = np.full((8, 2), np.nan)
    pred[6:] = [[0.3, 0.7], [0.6, 0.4]]
    ext = External("g", "e", {}, "0" * 64, 0, pred, "none")
    y = prior.classes[[0, 0, 0, 1, 1, 0, 1, 0]]
    tr, va = np.arange(6), np.arange(6, 8)
    folds = Folds(np.zeros((8, 1)), y, [(tr, va)], classify.ProbaMetric("log_loss", prior.classes))
    (got,) = Shifted(ext, s, prior).fold_fits(folds)
    q = classify.smoothed_constant(s, prior).fit(None, y[tr]).proba_
    shifted = pred[va] * q / prior.rates
    assert np.allclose(got.full[va], shifted / shifted.sum(axis=1, keepdims=True))
