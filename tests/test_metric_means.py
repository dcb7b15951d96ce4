"""Selection's fast MAE and MSE are ``np.mean``'s to the bit: every score, choice and band of
a run depends on them, and they run for every option on every fold of every partition."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from manymodels.training.metrics import mean_of, metric


class Given:
    """A fitted model whose predictions are given (what selection's trail scores)."""

    def __init__(self, pred: np.ndarray) -> None:
        self.pred = pred

    def predict(self, X: object) -> np.ndarray:
        return self.pred


@pytest.mark.parametrize("name", ["neg_mean_absolute_error", "neg_mean_squared_error"])
def test_fast_errors_are_numpys_mean_to_the_bit(name: str) -> None:
    rng = np.random.default_rng(0)
    square = name == "neg_mean_squared_error"
    for n in [1, 2, 5, 7, 8, 9, 14, 15, 16, 17, 127, 128, 129, 300, 1000]:
        for scale in (1e-3, 1.0, 1e6):
            y = rng.normal(size=n) * scale
            p = y + rng.standard_cauchy(size=n) * scale
            want = -float(np.mean((y - p) ** 2 if square else np.abs(y - p)))
            assert metric(name)(Given(p), None, y) == want  # exactly


def test_integer_and_small_float_errors_are_numpys_mean() -> None:
    """``np.mean`` sums integers and float32 in another type than their own: kept."""
    mae = metric("neg_mean_absolute_error")
    big = np.array([2**62, 2**62, 1], dtype=np.int64)
    assert mae(Given(np.zeros(3, dtype=np.int64)), None, big) == -float(np.mean(big))
    y32 = np.linspace(0, 1, 33, dtype=np.float32)
    p32 = np.zeros(33, dtype=np.float32)
    assert mae(Given(p32), None, y32) == -float(np.mean(np.abs(y32 - p32)))


def test_no_rows_is_nan_with_numpys_warning() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = metric("neg_mean_absolute_error")(Given(np.array([])), None, np.array([]))
    assert np.isnan(got)
    assert any("Mean of empty slice" in str(w.message) for w in seen)


@pytest.mark.parametrize(
    "name",
    ["neg_mean_absolute_error", "neg_root_mean_squared_error", "r2", "neg_median_absolute_error"],
)
def test_scores_of_given_predictions_are_the_estimators_to_the_bit(name: str) -> None:
    """``of_predictions`` (the interval replay's scores, without an estimator around each)
    is what the same predictions score through an estimator: numpy's scorers and
    scikit-learn's, integer targets and a list of predictions too."""
    rng = np.random.default_rng(1)
    score = metric(name)
    for y in (rng.normal(size=17) * 50, rng.integers(0, 9, size=9)):
        p = y + rng.standard_cauchy(size=len(y))
        assert score.of_predictions(y, p) == score(Given(p), None, y)
        assert score.of_predictions(y, list(p)) == score(Given(p), None, y)


def test_the_mean_of_scores_is_numpys_to_the_bit() -> None:
    """``mean_of`` (selection's mean over folds, the replay's over the other folds) is
    ``np.mean`` of the same list, whatever its length and the scores' magnitudes."""
    rng = np.random.default_rng(2)
    for n in [1, 2, 3, 5, 7, 8, 9, 16, 17, 129]:
        for scale in (1e-6, 1.0, 1e9):
            scores = [float(v) for v in -np.abs(rng.standard_cauchy(size=n)) * scale]
            assert mean_of(scores) == float(np.mean(scores))  # exactly
