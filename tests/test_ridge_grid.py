"""A Ridge grid's validation fits made from one decomposition per fold (``ridge_grid``) are
scikit-learn's fits: the same predictions, the same scores, the same choice — and anything the
shortcut does not cover goes to scikit-learn itself."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import noisy_panel, retrained_to_a_tie, ridge_features
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from manymodels.spec import Spec
from manymodels.spec_sections import Candidate
from manymodels.training import ridge_grid
from manymodels.training.select import fit_partition
from manymodels.training.splits import validation_splits

ALPHAS = [0.01, 1.0, 30.0]


def sklearn_fit(X: np.ndarray, y: np.ndarray, alpha: float, scale: bool) -> Any:
    model = make_pipeline(StandardScaler(), Ridge(alpha)) if scale else Ridge(alpha)
    return model.fit(X, y)


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("rows", [60, 4])  # 4 rows < 5 columns: more unknowns than rows
def test_fold_fits_predict_what_scikit_learn_predicts(scale: bool, rows: int) -> None:
    X, y = ridge_features(rows + 10)
    splits = [
        (slice(0, rows), slice(rows, rows + 5)),
        (np.arange(rows + 5), np.arange(rows + 5, rows + 10)),
    ]
    fits = ridge_grid.fold_fits(X, y, splits, ALPHAS, scale=scale)
    assert fits is not None and len(fits) == len(ALPHAS)
    for alpha, per_fold in zip(ALPHAS, fits, strict=True):
        assert len(per_fold) == len(splits)
        for fit, (train, valid) in zip(per_fold, splits, strict=True):
            expected = sklearn_fit(X[train], y[train], alpha, scale).predict(X[valid])
            np.testing.assert_allclose(fit.predict(X[valid]), expected, rtol=1e-7, atol=1e-7)


def test_only_a_ridge_grid_over_positive_alphas_takes_the_shortcut() -> None:
    ridge = Candidate(estimator="sklearn.linear_model.Ridge", params={"alpha": ALPHAS})
    assert ridge_grid.alphas(ridge, [{"alpha": a} for a in ALPHAS]) == ALPHAS
    assert ridge_grid.alphas(ridge, [{}]) == [1.0]  # Ridge's default
    assert ridge_grid.alphas(ridge, [{"alpha": np.float64(2.0)}, {"alpha": 3}]) == [2.0, 3.0]
    for grid in (
        [{"alpha": 1.0, "fit_intercept": False}],
        [{"alpha": 0.0}],
        [{"alpha": "1"}],
        [{"alpha": True}],
        [{"alpha": 1.0}, {"alpha": -1.0}],
    ):
        assert ridge_grid.alphas(ridge, grid) is None
    lasso = Candidate(estimator="sklearn.linear_model.Lasso")
    assert ridge_grid.alphas(lasso, [{"alpha": 1.0}]) is None


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_rows_that_are_not_finite_go_to_scikit_learn(bad: float) -> None:
    X, y = ridge_features(30)
    X[3, 1] = bad
    assert ridge_grid.fold_fits(X, y, [(slice(0, 20), slice(20, 30))], ALPHAS, scale=True) is None
    X, y = ridge_features(30)
    y[2] = bad
    assert ridge_grid.fold_fits(X, y, [(slice(0, 20), slice(20, 30))], ALPHAS, scale=True) is None


def spec(**validation: Any) -> Spec:
    return Spec.from_dict(
        {
            "name": "ridge",
            "partition_by": ["pid"],
            "target": "y",
            "time_column": "t",
            "features": [f"x{i}" for i in range(5)],
            "metric": "neg_mean_absolute_error",
            "candidates": [
                {
                    "estimator": "sklearn.linear_model.Ridge",
                    "scale": True,
                    "params": {"alpha": ALPHAS},
                },
            ],
            "validation": validation,
            "selection": {"naive_candidate": False},
            "fallback": {"enabled": False},
        }
    )


@pytest.mark.parametrize(
    "validation",
    [{"strategy": "kfold", "size": 6, "folds": 3}, {"strategy": "last", "size": 8}],
)
def test_selection_scores_each_alpha_as_scikit_learn_fits_score_it(
    validation: dict[str, Any],
) -> None:
    X, y = ridge_features(48, seed=3)
    s = spec(**validation)
    fitted = fit_partition(X, y, s, key="pid=1")
    splits = validation_splits(len(y), s, key="pid=1")
    expected = {
        alpha: -np.mean(
            [
                mean_absolute_error(y[va], sklearn_fit(X[tr], y[tr], alpha, True).predict(X[va]))
                for tr, va in splits
            ]
        )
        for alpha in ALPHAS
    }
    scores = {c.params["alpha"]: c.score for c in fitted.candidates}
    assert scores == pytest.approx(expected, rel=1e-9)
    best = max(expected, key=lambda a: expected[a])
    assert fitted.params == {"alpha": best}
    # the stored model is scikit-learn's own, refitted on every row
    assert type(fitted.model).__name__ == "Pipeline"
    np.testing.assert_allclose(
        fitted.model.predict(X), sklearn_fit(X, y, best, True).predict(X), rtol=1e-12
    )


def test_rows_scikit_learn_rejects_fail_as_scikit_learn_says() -> None:
    X, y = ridge_features(48)
    X[5, 0] = np.nan  # the scaler passes NaN through; Ridge refuses it: every grid point fails
    with pytest.raises(ValueError, match="NaN"):
        fit_partition(X, y, spec(strategy="last", size=8), key="pid=1")


def test_selection_takes_the_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortcut is wired in: selection asks it once per Ridge candidate (a spy that
    delegates: the real fits still run) and fits no Ridge per fold itself, nor the chosen
    grid point's refit on all rows (``ridge_refit``: scikit-learn's model all the same)."""
    calls: list[list[float]] = []
    real = ridge_grid.fold_fits

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(list(args[3]))
        return real(*args, **kwargs)

    fitted_rows: list[int] = []
    real_fit = Ridge.fit

    def counted(self: Ridge, X: Any, y: Any, *a: Any, **k: Any) -> Ridge:
        fitted_rows.append(len(y))
        return real_fit(self, X, y, *a, **k)

    monkeypatch.setattr(ridge_grid, "fold_fits", spy)
    monkeypatch.setattr(Ridge, "fit", counted)
    X, y = ridge_features(48, seed=3)
    fitted = fit_partition(X, y, spec(strategy="kfold", size=6, folds=3), key="pid=1")
    assert calls == [ALPHAS]
    assert fitted_rows == []
    monkeypatch.undo()
    expected = make_pipeline(StandardScaler(), Ridge(fitted.params["alpha"], random_state=0))
    assert pickle.dumps(fitted.model) == pickle.dumps(expected.fit(X, y))  # the spec's seed


def test_a_retrain_on_the_same_rows_ties_exactly(tmp_path: Path) -> None:
    """A champion refitted by scikit-learn against the challenger's fits: the same model on
    the same rows must score the same to the last bit, alone or in a top-2 mean — else the
    comparison would promote or keep on rounding."""
    df = noisy_panel(ridge_features, [f"x{i}" for i in range(5)], seed=5)
    s = spec(strategy="kfold", size=6, folds=3).model_dump(mode="json", exclude_none=True)
    s["candidates"].append(
        {"estimator": "sklearn.linear_model.Ridge", "name": "unscaled", "params": {"alpha": [5.0]}}
    )
    s["selection"] = {"naive_candidate": False, "ensemble": "top2"}
    s["promotion"] = {"policy": "if_better"}
    second = retrained_to_a_tie(s, df, tmp_path / "reg")
    assert {v.validation["chosen"] for v in second} >= {"ensemble"}


def test_a_table_wider_than_its_rows_trains_in_seconds_as_scikit_learn_fits_it(
    tmp_path: Path,
) -> None:
    """3,000 features over 30 rows a partition (a wide file): the shortcut decomposed the
    features' 3,000 × 3,000 matrix per fold, 66 s here where scikit-learn's Ridge solves
    the rows' system in milliseconds, and ``train`` of such a CSV took minutes a partition.
    Such rows now go to scikit-learn (the same fit): generous bound, it must not crawl."""
    import time

    import pandas as pd

    from manymodels.pipeline import train

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3000))
    splits = [(np.arange(24), np.arange(24, 30))]
    assert ridge_grid.fold_fits(X, X[:, 0], splits, ALPHAS, scale=True) is None
    frame = pd.DataFrame(rng.normal(size=(60, 3000)), columns=[f"f{i}" for i in range(3000)])
    frame = frame.assign(pid=np.repeat([1, 2], 30), y=rng.normal(size=60))
    spec = {
        "name": "wide",
        "task": "regression",
        "partition_by": ["pid"],
        "target": "y",
        "metric": "neg_mean_absolute_error",
        "min_rows": 10,
        "validation": {"strategy": "holdout", "size": 0.2},
        "fallback": {"enabled": False},
        "candidates": [
            {"estimator": "sklearn.linear_model.Ridge", "scale": True, "params": {"alpha": ALPHAS}}
        ],
    }
    started = time.monotonic()
    summary = train(spec, frame, tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2, summary.failures
    assert time.monotonic() - started < 60  # before: over 2 minutes a partition
