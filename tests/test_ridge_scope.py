"""The two Ridge shortcuts take the same Ridge, rows and arithmetic (``ridge_scope``): the
grid scores no alpha whose refit scikit-learn would make instead, and neither runs where the
caller asked numpy to speak up."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import pytest
from factories import ridge_features
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from manymodels.spec_sections import Candidate
from manymodels.training import ridge_grid, ridge_refit, ridge_scope

SPLITS = [(slice(0, 30), slice(30, 40))]
RIDGE = Candidate(estimator=ridge_grid.RIDGE)


class Shifted(float):
    """A float whose ``float()`` is not its value: numpy (and so scikit-learn's Ridge) reads
    1.0 where ``float(alpha)`` says 2.0."""

    def __float__(self) -> float:
        return 2.0

    def __repr__(self) -> str:
        return "Shifted(1.0)"


class Level(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "alpha",
    [1.0, 3, np.float64(0.5), 0.0, -1.0, np.inf, np.nan, True, "1", Shifted(1.0), Level.ONE],
    ids=repr,
)
def test_the_grid_scores_an_alpha_only_where_the_refit_fits_it(alpha: Any) -> None:
    X, y = ridge_features(40)
    grid = ridge_grid.alphas(RIDGE, [{"alpha": alpha}])
    refitted = ridge_refit.fitted_here(make_pipeline(StandardScaler(), Ridge(alpha)), X, y)
    assert (grid is not None) == refitted
    if grid is not None:  # and scores the model scikit-learn stores
        fits = ridge_grid.fold_fits(X, y, SPLITS, grid, scale=True)
        assert fits is not None
        theirs = make_pipeline(StandardScaler(), Ridge(alpha)).fit(X[:30], y[:30])
        np.testing.assert_allclose(
            fits[0][0].predict(X[30:]), theirs.predict(X[30:]), rtol=1e-7, atol=1e-7
        )


def test_an_int_past_the_largest_float_is_left_to_scikit_learn() -> None:
    """``10**400`` is positive and below ``np.inf`` as Python compares them, but has no float:
    the grid's ``float(alpha)`` overflowed outside its own guard."""
    assert not ridge_scope.plain_alpha(10**400)
    assert ridge_scope.plain_alpha(int(np.finfo(np.float64).max))
    assert ridge_grid.alphas(RIDGE, [{"alpha": 10**400}]) is None


def test_a_caller_that_hears_underflow_gets_scikit_learns_fits_from_both() -> None:
    X, y = ridge_features(40)
    tiny = X * 1e-300  # squares underflow in the scaler's variance, ignored by default
    with np.errstate(under="raise"):
        with pytest.raises(FloatingPointError, match="underflow"):
            make_pipeline(StandardScaler(), Ridge()).fit(tiny[:30], y[:30])
        assert ridge_grid.fold_fits(tiny, y, SPLITS, [1.0], scale=True) is None
        assert not ridge_refit.fitted_here(make_pipeline(StandardScaler(), Ridge()), tiny, y)
    assert ridge_grid.fold_fits(tiny, y, SPLITS, [1.0], scale=True) is not None
    assert ridge_refit.fitted_here(make_pipeline(StandardScaler(), Ridge()), tiny, y)


def test_rows_neither_shortcut_takes() -> None:
    X, y = ridge_features(40)
    holed, infinite = X.copy(), y.copy()
    holed[3, 1] = np.nan
    infinite[3] = np.inf
    for rows, target in ((holed, y), (X, infinite), (np.empty((40, 0)), y), (X[:, 0], y)):
        assert ridge_grid.fold_fits(rows, target, SPLITS, [1.0], scale=True) is None
        assert not ridge_refit.fitted_here(make_pipeline(StandardScaler(), Ridge()), rows, target)
