"""A production version that is a global classifier shifted to its partition's rates
(``manymodels.prior_shift.PriorShifted``) as the champion a retrain compares against: it
holds a global model fitted on every partition's rows, so it cannot be refitted on this
partition's folds (``training.compare.holds_global``), as a bare global champion cannot."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from manymodels.prior_shift import PriorShifted
from manymodels.training.classify import ProbaMetric
from manymodels.training.compare import compare, holds_global
from manymodels.training.global_fit import GlobalModel, bound


def test_a_shifted_global_champion_is_not_scored_on_the_rows_its_model_was_fitted_on() -> None:
    """``clone`` keeps the member's global model fitted: the "refit" scored the champion on
    validation rows that model was fitted on (in-sample), against a challenger's honest
    fold fit — the champion was judged by a score it could not have earned."""
    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, (80, 1))
    y = np.where(X[:, 0] + rng.normal(0, 0.8, 80) > 0, "b", "a")
    glob = GlobalModel(LogisticRegression(), features=["x"]).fit(X, y)
    champion = PriorShifted(bound(glob, {"user": "u1"}, "c" * 64), [1.2, 0.8], ["a", "b"])
    tr, va = np.arange(60), np.arange(60, 80)
    challenger = LogisticRegression().fit(X[tr], y[tr])
    score = ProbaMetric("log_loss", np.array(["a", "b"]))

    assert holds_global(champion)
    got = compare(champion, [challenger], [(tr, va)], X, y, score, n=80, unseen=None)
    assert got.champion is None and got.basis == "refit"
    assert got.error is not None and "global model" in got.error
    assert got.rows == 20
