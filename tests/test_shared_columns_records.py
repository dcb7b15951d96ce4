"""What a partition records after selection — a classifier's probability quality and decision
threshold, the champion refitted for comparison — takes the preprocessing selection fitted on
each fold (``training.shared_columns``) rather than fitting or transforming it again, and is
the same bits as from each Pipeline fitted whole."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import clone

from manymodels import candidates as cands
from manymodels.classes import class_prior
from manymodels.spec import Spec
from manymodels.training import classify, thresholds
from manymodels.training.metrics import metric
from manymodels.training.select import fit_partition
from manymodels.training.splits import take, validation_splits
from tests.test_shared_columns import CATEGORICAL, CLASSIFIERS, NUMERIC, REGRESSORS, rows, spec

pytest_plugins = ["tests.test_shared_columns"]  # the column_fits fixture


def whole_fits(s: Spec, X: Any, y: np.ndarray, fitted: Any) -> list[Any]:
    """The chosen grid point's Pipeline fitted whole on each fold, as before sharing."""
    cand = next(c for c in s.candidates if c.estimator == fitted.estimator)

    def built() -> Any:
        return cands.build(cand, fitted.params, categorical=CATEGORICAL, numeric=NUMERIC, seed=0)

    return [built().fit(take(X, tr), y[tr]) for tr, _ in validation_splits(len(y), s, key="item=a")]


def test_a_classifiers_quality_and_threshold_transform_no_fold_again(
    column_fits: list[str],
) -> None:
    """Quality and threshold each transformed every validation fold again: 2 shapes × 3 folds
    were 6 transforms in selection and 6 more after it; now 6, and the records the same."""
    X, y = rows()
    y = np.where(y > np.quantile(y, 0.7), "high", "low")
    decision = {"threshold": "f1", "min_positives": 1, "positive": "high"}
    s = spec("classification", CLASSIFIERS, decision=decision)
    fitted = fit_partition(X, y, s, key="item=a", categorical=CATEGORICAL, numeric=NUMERIC)
    assert column_fits.count("fit") == 2 * 3 + 1  # the refit on all rows among them
    assert column_fits.count("transform") == 2 * 3
    fits = whole_fits(s, X, y, fitted)
    splits, prior = validation_splits(len(y), s, key="item=a"), class_prior(y)
    quality = classify.quality(fits, splits, X, y, prior.classes)
    assert {k: fitted.validation[k] for k in quality} == quality
    assert s.decision is not None
    assert fitted.decision == thresholds.threshold(s.decision, prior, fits, splits, X, y)
    assert fitted.decision is not None and fitted.decision["chosen_on"] == "validation"


@pytest.mark.parametrize("same_shape", [True, False])
def test_a_refitted_champion_takes_each_folds_preprocessing_when_of_its_shape(
    column_fits: list[str], same_shape: bool
) -> None:
    """A champion refitted on the folds (no row known to be newer than its data) fitted its
    ColumnTransformer again on each fold and transformed each validation fold again: 3 + 3
    more; now none where a candidate has its shape (a scaled Ridge beside a scaled Ridge),
    its own 3 + 3 where none has (a Lasso's, not scaled), its score the same bits as its
    Pipeline fitted whole on each fold."""
    X, y = rows()
    s = spec("regression", REGRESSORS[:1])  # a scaled Ridge, α 0.1 or 10
    kind = spec("regression", REGRESSORS[:2]).candidates[0 if same_shape else 1]
    champion = cands.build(
        kind, {"alpha": 3.0 if same_shape else 0.05}, categorical=CATEGORICAL, numeric=NUMERIC,
        seed=0,
    ).fit(X, y)  # fmt: skip
    column_fits.clear()
    fitted = fit_partition(
        X, y, s, key="item=a", categorical=CATEGORICAL, numeric=NUMERIC, champion=champion,
        unseen=None,
    )  # fmt: skip
    assert column_fits.count("fit") == 3 + 1 + (0 if same_shape else 3)
    assert column_fits.count("transform") == 3 + (0 if same_shape else 3)
    comparison = fitted.comparison
    assert comparison is not None and comparison.basis == "refit"
    score_fn = metric(s.metric_name)
    splits = validation_splits(len(y), s, key="item=a")
    pairs = list(zip(whole_fits(s, X, y, fitted), splits, strict=True))
    ours = [score_fn(f, take(X, va), y[va]) for f, (_, va) in pairs]
    theirs = [
        score_fn(clone(champion).fit(take(X, tr), y[tr]), take(X, va), y[va]) for tr, va in splits
    ]
    assert (comparison.challenger, comparison.champion) == (np.mean(ours), np.mean(theirs))
